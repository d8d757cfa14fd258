-- The source is the raw_payments seed: depend on it so `dbt build` seeds it first.
-- depends_on: {{ ref('raw_payments') }}
select
    id as payment_id,
    order_id,
    payment_method,
    {{ demo_utils.cents_to_dollars('amount_cents') }} as amount,
    loaded_at
from {{ source('raw', 'payments') }}
