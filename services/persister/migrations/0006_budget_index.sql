-- The gateway's global daily budget sums the cost of the last day's requests across all users.
CREATE INDEX workout_plan_requests_created ON workout_plan_requests (created_at);
