{{
    config(
        materialized='incremental',
        unique_key='order_date',
        incremental_strategy='delete+insert'
    )
}}

{#- An incremental run reprocesses the latest day already loaded, and everything after. -#}
{%- set since = "date '1900-01-01'" -%}
{%- if is_incremental() -%}
    {%- set since = "(select max(order_date) from " ~ this ~ ")" -%}
{%- endif %}

select
    order_date,
    count(*) as order_count,
    sum(amount) as revenue
from {{ ref('orders') }}
where
    status <> 'returned'
    and order_date >= {{ since }}
group by order_date
