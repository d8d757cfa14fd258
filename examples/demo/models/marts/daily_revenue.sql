{{ config(materialized='incremental', unique_key='order_date', incremental_strategy='delete+insert') }}

select
    order_date,
    count(*) as order_count,
    sum(amount) as revenue
from {{ ref('orders') }}
where status <> 'returned'
{% if is_incremental() %}
    -- Reprocess the latest day already loaded, and everything after it.
    and order_date >= (select max(order_date) from {{ this }})
{% endif %}
group by order_date
