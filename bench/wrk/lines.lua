-- wrk: each request takes the next line of LINES_FILE, split between the
-- threads (line i goes to thread i mod threads), so every request carries a
-- value used once: a client assertion (private_key_jwt) or a DPoP proof.
--   MODE=assertion  POST form: grant_type=client_credentials&scope=SCOPE&
--                   client_assertion_type=…&client_assertion=<line>
--   MODE=dpop       GET with Authorization: DPoP TOKEN and DPoP: <line>
-- Runs out: wraps around (the server then refuses the replay: counted non-2xx).
local threads, counter = {}, 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(os.getenv("WRK_THREADS"))
  lines = {}
  local i = 0
  for line in io.lines(os.getenv("LINES_FILE")) do
    if i % n == tid then table.insert(lines, line) end
    i = i + 1
  end
  next_line = 1
  mode = os.getenv("MODE")
  scope = os.getenv("SCOPE") or ""
  token = os.getenv("TOKEN") or ""
end

function request()
  local line = lines[next_line]
  next_line = next_line % #lines + 1
  if mode == "assertion" then
    local body = "grant_type=client_credentials&scope=" .. scope ..
      "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" ..
      "&client_assertion=" .. line
    return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
  else
    return wrk.format("GET", nil, {["Authorization"] = "DPoP " .. token, ["DPoP"] = line}, nil)
  end
end
