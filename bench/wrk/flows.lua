-- wrk script for bench/user-flows.sh: POST /connect/token with a body that
-- changes per request, counting status codes, and a JSON summary at the end.
--
-- Environment (wrk passes no arguments to the main Lua state, so everything
-- comes from the environment):
--   WRK_MODE     hello    one fixed body (WRK_BODY), the baseline
--                code     grant_type=authorization_code, each code of WRK_INPUT once
--                refresh  grant_type=refresh_token; WRK_INPUT holds one refresh
--                         token per family; every 200 answer's refresh_token goes
--                         back into the pool in place of the one just spent
--   WRK_INPUT    one code or refresh token per line
--   WRK_THREADS  wrk's -t: thread i takes the lines i, i+T, i+2T, ... so no code
--                and no family is ever in two threads
--   WRK_AUTH     Authorization header value (HTTP Basic of the client)
--   WRK_REDIRECT redirect_uri, form-encoded (code mode)
--   WRK_BODY     the fixed body (hello mode)
--   WRK_OUT      where done() writes the summary (JSON shaped like oha's)
--
-- A family is never used by two requests at once: its one live refresh token is
-- either in this thread's pool or in a single request in flight, and only the
-- answer to that request puts the successor back. A non-200 answer loses the
-- family (the script cannot tell which one it was; the pool only shrinks). When
-- a pool runs dry (codes used up, or every family lost) the request carries a
-- placeholder that the server refuses with 400; those are counted as "starved".

local mode = os.getenv("WRK_MODE") or "hello"

-- ------------------------------------------------------------ main state
local threads = {}
local next_tid = 0

function setup(thread)
    thread:set("tid", next_tid)
    next_tid = next_tid + 1
    table.insert(threads, thread)
end

-- ------------------------------------------------------------ thread state
-- Globals, so that done() can read them with thread:get().
counts = {}
starved = 0
no_token = 0
loaded = 0
head = 1
tail = 0
first_error = ""

local pool = {}
local fixed = nil
local hdrs = nil
local redirect = ""

function init(args)
    local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
    hdrs = { ["Content-Type"] = "application/x-www-form-urlencoded" }
    local auth = os.getenv("WRK_AUTH")
    if auth and auth ~= "" then
        hdrs["Authorization"] = auth
    end
    redirect = os.getenv("WRK_REDIRECT") or ""
    if mode == "hello" then
        fixed = wrk.format("POST", nil, hdrs, os.getenv("WRK_BODY") or "")
        return
    end
    local i = 0
    for line in io.lines(os.getenv("WRK_INPUT")) do
        if line ~= "" then
            if i % nthreads == tid then
                tail = tail + 1
                pool[tail] = line
            end
            i = i + 1
        end
    end
    loaded = tail
end

local function take()
    if head <= tail then
        local item = pool[head]
        pool[head] = nil
        head = head + 1
        return item
    end
    starved = starved + 1
    return "bench-pool-empty"
end

function request()
    if mode == "hello" then
        return fixed
    end
    local body
    if mode == "code" then
        body = "grant_type=authorization_code&code=" .. take() .. "&redirect_uri=" .. redirect
    else
        body = "grant_type=refresh_token&refresh_token=" .. take()
    end
    return wrk.format("POST", nil, hdrs, body)
end

function response(status, headers, body)
    counts[status] = (counts[status] or 0) + 1
    if status == 200 then
        if mode == "refresh" then
            local rt = body and string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
            if rt then
                tail = tail + 1
                pool[tail] = rt
            else
                no_token = no_token + 1
            end
        end
    elseif first_error == "" then
        first_error = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
end

-- ------------------------------------------------------------ summary
local function json_string(s)
    s = string.gsub(s, '[%c"\\]', function(c)
        if c == '"' then return '\\"' end
        if c == "\\" then return "\\\\" end
        return string.format("\\u%04x", string.byte(c))
    end)
    return '"' .. s .. '"'
end

local function json_object(t)
    local parts = {}
    for k, v in pairs(t) do
        local val
        if type(v) == "string" then val = json_string(v) else val = string.format("%.17g", v) end
        table.insert(parts, json_string(tostring(k)) .. ":" .. val)
    end
    return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
    local agg, extra = {}, { starved = 0, noToken = 0, loaded = 0, left = 0 }
    local first = ""
    for _, t in ipairs(threads) do
        for k, v in pairs(t:get("counts") or {}) do
            agg[k] = (agg[k] or 0) + v
        end
        extra.starved = extra.starved + (t:get("starved") or 0)
        extra.noToken = extra.noToken + (t:get("no_token") or 0)
        extra.loaded = extra.loaded + (t:get("loaded") or 0)
        extra.left = extra.left + math.max(0, (t:get("tail") or 0) - (t:get("head") or 1) + 1)
        if first == "" then first = t:get("first_error") or "" end
    end
    extra.firstError = first
    extra.mode = mode
    local secs = summary.duration / 1e6
    local errors = {}
    for _, k in ipairs({ "connect", "read", "write", "timeout" }) do
        if summary.errors[k] > 0 then errors[k] = summary.errors[k] end
    end
    local out = "{"
        .. '"summary":' .. json_object({
            total = secs,
            requestsPerSec = summary.requests / secs,
            requests = summary.requests,
        })
        .. ',"latencyPercentiles":' .. json_object({
            p50 = latency:percentile(50) / 1e6,
            p99 = latency:percentile(99) / 1e6,
            mean = latency.mean / 1e6,
        })
        .. ',"statusCodeDistribution":' .. json_object(agg)
        .. ',"errorDistribution":' .. json_object(errors)
        .. ',"wrk":' .. json_object(extra)
        .. "}\n"
    local f = assert(io.open(os.getenv("WRK_OUT"), "w"))
    f:write(out)
    f:close()
end
