-- wrk script for tests/load/run.sh and tests/load/cache.sh: the Odoo 17 web client's
-- list-view call, `web_search_read` on res.partner through `call_kw`, with the headers a
-- browser sends. No Accept-Encoding (unless cache.sh asks for it): every proxy forwards the
-- upstream's 12 KB answer as is, so the comparison is pure forwarding (compression would
-- dominate the cost otherwise).

wrk.method = "POST"
wrk.path = "/web/dataset/call_kw/res.partner/web_search_read"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "*/*"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
wrk.headers["Origin"] = "http://127.0.0.1"
wrk.headers["Referer"] = "http://127.0.0.1/odoo/contacts"
wrk.headers["Cookie"] = "frontend_lang=en_US; session_id=3f1c0b9e6d2a4c8e9f7b5a1d3c6e8f0a2b4d6c8e"
-- cache.sh only (run.sh leaves both unset): BENCH_ACCEPT_ENCODING (e.g. "gzip") for the
-- compressed-hit variant, BENCH_CACHE_CONTROL (e.g. "no-cache", which BridgeCore honours as
-- X-Cache: BYPASS) for the uncached one.
for env, name in pairs({ BENCH_ACCEPT_ENCODING = "Accept-Encoding", BENCH_CACHE_CONTROL = "Cache-Control" }) do
  local v = os.getenv(env)
  if v and v ~= "" then
    wrk.headers[name] = v
  end
end
-- run.sh sets BC_TOKEN for the JWT-only BridgeCore (bc-auth) only.
local token = os.getenv("BC_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
wrk.body = '{"id":7,"jsonrpc":"2.0","method":"call","params":{"model":"res.partner",'
  .. '"method":"web_search_read","args":[],"kwargs":{"specification":{"display_name":{},'
  .. '"email":{},"phone":{},"company_id":{"fields":{"display_name":{}}},"city":{},'
  .. '"country_id":{"fields":{"display_name":{}}},"user_id":{"fields":{"display_name":{}}},'
  .. '"activity_ids":{},"is_company":{}},"offset":0,"order":"","limit":80,'
  .. '"context":{"lang":"en_US","tz":"Europe/Brussels","uid":2,"allowed_company_ids":[1],'
  .. '"bin_size":true,"current_company_id":1},"count_limit":10001,'
  .. '"domain":[["is_company","=",true]]}}}'

-- One machine-readable line for run.sh (latencies in microseconds).
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d socket_errors=%d bytes=%d max_us=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout, summary.bytes, latency.max))
end
