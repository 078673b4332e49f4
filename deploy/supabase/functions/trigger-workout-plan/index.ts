// trigger-workout-plan: hands `functions.invoke("trigger-workout-plan", { body })` on to the
// workout gateway, so an app keeps calling its Supabase project's URL unchanged.
//
// It forwards the call (method, body, the headers below) to
// ${WORKOUT_GATEWAY_URL}/functions/v1/trigger-workout-plan and returns the gateway's status, body
// and Content-Type unchanged: a 202 is the gateway's {"request_id", "status", "message"}, an error
// its {"error": {"code", "message", "details"}} with a non-2xx status (supabase-js raises
// FunctionsHttpError with the Response as `context`). The gateway checks the Bearer token itself;
// this function adds only CORS. No imports, so nothing to fetch at deploy or boot time.
//
// Secrets: WORKOUT_GATEWAY_URL (required), WORKOUT_CORS_ORIGINS (comma-separated origins, "*" when
// unset). See deploy/supabase/README.md.

// What a browser may send: the gateway's CORS_ALLOWED_HEADERS (services/gateway/app.py), which
// are the headers Supabase's clients send plus ours. A test keeps the two lists equal.
const ALLOWED_HEADERS = [
  "authorization",
  "apikey",
  "x-client-info",
  "content-type",
  "x-region",
  "idempotency-key",
  "last-event-id",
  "traceparent",
  "tracestate",
  "baggage",
];

// What reaches the gateway: what a plan request uses; nothing the platform adds.
const FORWARDED_HEADERS = [
  "authorization",
  "apikey",
  "x-client-info",
  "content-type",
  "idempotency-key",
  "traceparent",
  "tracestate",
  "baggage",
];

// What comes back besides the body and its Content-Type: when to retry, why a token was refused.
const RETURNED_HEADERS = ["retry-after", "www-authenticate"];

const TARGET = "/functions/v1/trigger-workout-plan";
const GATEWAY_URL = Deno.env.get("WORKOUT_GATEWAY_URL");
const ORIGINS = (Deno.env.get("WORKOUT_CORS_ORIGINS") ?? "*")
  .split(",")
  .map((origin) => origin.trim())
  .filter((origin) => origin !== "");
// The gateway answers in milliseconds; this only bounds a gateway that hangs.
const TIMEOUT_MS = 30_000;

function corsHeaders(req: Request): Headers {
  const headers = new Headers({
    "Access-Control-Allow-Headers": ALLOWED_HEADERS.join(", "),
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Expose-Headers": "Retry-After, WWW-Authenticate",
    "Access-Control-Max-Age": "600",
    "Vary": "Origin",
  });
  const origin = req.headers.get("origin");
  if (ORIGINS.includes("*")) {
    headers.set("Access-Control-Allow-Origin", "*");
  } else if (origin !== null && ORIGINS.includes(origin)) {
    headers.set("Access-Control-Allow-Origin", origin);
  }
  return headers;
}

// The gateway's own 503 shape, for when the gateway cannot be reached at all.
function unavailable(headers: Headers, message: string): Response {
  headers.set("Content-Type", "application/json");
  headers.set("Retry-After", "5");
  const body = { error: { code: "unavailable", message, details: [] } };
  return new Response(JSON.stringify(body), { status: 503, headers });
}

Deno.serve(async (req: Request): Promise<Response> => {
  const headers = corsHeaders(req);
  if (req.method === "OPTIONS") {
    return new Response("ok", { headers });
  }
  if (!GATEWAY_URL) {
    console.error("WORKOUT_GATEWAY_URL is not set: supabase secrets set WORKOUT_GATEWAY_URL=https://...");
    return unavailable(headers, "The workout service is not configured.");
  }

  const forwarded = new Headers();
  for (const name of FORWARDED_HEADERS) {
    const value = req.headers.get(name);
    if (value !== null) {
      forwarded.set(name, value);
    }
  }

  let answer: Response;
  try {
    answer = await fetch(GATEWAY_URL.replace(/\/+$/, "") + TARGET, {
      method: req.method,
      headers: forwarded,
      body: req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer(),
      // Never follow a redirect with the user's token.
      redirect: "manual",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    console.error("the workout gateway did not answer:", error);
    return unavailable(
      headers,
      "The workout service did not answer; try again shortly (a retry with the same Idempotency-Key cannot start a second plan).",
    );
  }

  const contentType = answer.headers.get("content-type");
  if (contentType !== null) {
    headers.set("Content-Type", contentType);
  }
  for (const name of RETURNED_HEADERS) {
    const value = answer.headers.get(name);
    if (value !== null) {
      headers.set(name, value);
    }
  }
  return new Response(answer.body, { status: answer.status, headers });
});
