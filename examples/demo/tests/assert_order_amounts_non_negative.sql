-- Singular test: a payment can never make an order's amount negative.
select order_id, amount
from {{ ref('orders') }}
where amount < 0
