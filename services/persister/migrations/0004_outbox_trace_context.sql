-- The W3C traceparent of the request that staged an event, so the outbox relay publishes it inside
-- that request's trace (service_runtime.tracing). NULL when tracing was off or nothing was traced;
-- older gateways that do not write it keep working.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS traceparent text;
