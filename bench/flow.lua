-- wrk script: whole customer flows, the same steps and checks as bench_flow.py's Python customers,
-- without a Python process a customer. Run by `bench_flow.py --generator wrk` (which seeds the
-- customers and the app and passes what this needs):
--
--   wrk -t N -c N -d 20s -s bench/flow.lua ORIGIN -- TENANT CLIENT_ID CLIENT_SECRET TOKEN NAME_QUERY OUT_DIR
--
-- One connection a thread (-t = -c), so each thread is one customer at a time whose requests go one
-- after the other: thread i is customer i of bench_flow.customer(i). A flow: the authorization
-- request (fresh PKCE pair), ① GET+POST, ② GET+POST, ③ GET+POST, ④ GET, the provider's webhook
-- signed as Twilio signs it (HMAC-SHA1 with the auth token), ④ 確定する, ⑤ GET+POST, ⑥ GET+POST,
-- the token exchange and `/accounts` (on a new connection, as the app's server makes them). Each answer is checked for the status a customer expects; a
-- wrong one counts as an error of its step and starts a new flow with a new cookie jar. Each thread
-- writes its answers' latencies, flows and errors to OUT_DIR/<customer>.txt; bench_flow.py reads them.
-- SHA-256, HMAC and base64 come from the system's libcrypto through LuaJIT's FFI. The customer's
-- requests carry a browser's Accept-Encoding; the zstd pages come back through libzstd's.

local ffi = require("ffi")
ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha1(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *d, size_t n,
                    unsigned char *md, unsigned int *md_len);
unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
int EVP_EncodeBlock(unsigned char *t, const unsigned char *f, int n);
int RAND_bytes(unsigned char *buf, int num);
typedef struct { long tv_sec; long tv_nsec; } timespec_t;
int clock_gettime(int clk_id, timespec_t *tp);
]]
local crypto = ffi.load("libcrypto.so.3")
-- The browser's steps ask for compressed pages, as Chrome does; the app answers zstd, read back here.
ffi.cdef [[
size_t ZSTD_decompress(void *dst, size_t dstCapacity, const void *src, size_t compressedSize);
unsigned ZSTD_isError(size_t code);
]]
local zstd = ffi.load("libzstd.so.1")
local BROWSER_ENCODINGS = "gzip, deflate, br, zstd"
local PAGE_MAX = 1024 * 1024
local page = ffi.new("unsigned char[?]", PAGE_MAX)

-- The body as the browser reads it; nil and a message for an encoding this script cannot read.
local function decoded(headers, body)
  local encoding = headers["Content-Encoding"]
  if not encoding or not body or body == "" then return body end
  if encoding ~= "zstd" then return nil, "Content-Encoding " .. encoding end
  local n = zstd.ZSTD_decompress(page, PAGE_MAX, body, #body)
  if zstd.ZSTD_isError(n) ~= 0 then return nil, "a zstd body that does not decode" end
  return ffi.string(page, n)
end

local function base64(bytes, n)
  local out = ffi.new("unsigned char[?]", 4 * math.ceil(n / 3) + 1)
  return ffi.string(out, crypto.EVP_EncodeBlock(out, bytes, n))
end

local function base64url(bytes, n)
  return (base64(bytes, n):gsub("+", "-"):gsub("/", "_"):gsub("=", ""))
end

local function random_hex(n)
  local buf = ffi.new("unsigned char[?]", n)
  crypto.RAND_bytes(buf, n)
  local s = {}
  for i = 0, n - 1 do s[#s + 1] = string.format("%02x", buf[i]) end
  return table.concat(s)
end

local function pkce()
  local buf = ffi.new("unsigned char[48]")
  crypto.RAND_bytes(buf, 48)
  local verifier = base64url(buf, 48)
  local digest = ffi.new("unsigned char[32]")
  crypto.SHA256(verifier, #verifier, digest)
  return verifier, base64url(digest, 32)
end

local function twilio_signature(url, params, token)
  local names = {}
  for name in pairs(params) do names[#names + 1] = name end
  table.sort(names)
  local payload = { url }
  for _, name in ipairs(names) do payload[#payload + 1] = name .. params[name] end
  payload = table.concat(payload)
  local out = ffi.new("unsigned char[20]")
  local len = ffi.new("unsigned int[1]")
  crypto.HMAC(crypto.EVP_sha1(), token, #token, payload, #payload, out, len)
  return base64(out, len[0])
end

local now_ts = ffi.new("timespec_t")
local function now()
  ffi.C.clock_gettime(1, now_ts) -- CLOCK_MONOTONIC
  return tonumber(now_ts.tv_sec) + tonumber(now_ts.tv_nsec) / 1e9
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local function form(fields)
  local parts = {}
  for _, kv in ipairs(fields) do parts[#parts + 1] = kv[1] .. "=" .. kv[2] end
  return table.concat(parts, "&")
end

-- The main thread hands each thread its number (its customer) in setup().
local counter = 0
function setup(thread)
  thread:set("customer", counter)
  counter = counter + 1
end

local tenant, client_id, basic, telephony_token, name_query, origin
local branch, number, phone
local flow_path
local state = {}
local out  -- this thread's record, a line an answer: "lat K SECONDS", "flow", "error K MESSAGE"
function init(args)
  tenant, client_id = args[1], args[2]
  basic = "Basic " .. base64(args[2] .. ":" .. args[3], #args[2] + 1 + #args[3])
  telephony_token, name_query = args[4], args[5]
  origin = wrk.scheme .. "://" .. wrk.host .. ":" .. wrk.port
  number = string.format("%07d", 2000000 + customer)
  phone = string.format("090%08d", 50000000 + customer)
  branch = "115"
  flow_path = "/" .. tenant .. "/flow"
  -- A file a thread, line-buffered: wrk's thread:get cannot bring tables of this size back intact.
  out = assert(io.open(args[6] .. "/" .. customer .. ".txt", "w"))
  out:setvbuf("line")
end

-- The steps, in order: each gives the request (method, path, headers, body) from the flow's state and
-- the status it expects; `after` reads what the next steps need from the answer.
local function csrf_form(fields)
  local all = { { "csrf_token", urlencode(state.csrf or "") } }
  for _, kv in ipairs(fields or {}) do all[#all + 1] = kv end
  return form(all)
end

local FORM = "application/x-www-form-urlencoded"
local steps = {
  { "authorize", function()
    state.verifier, state.challenge = pkce()
    return "GET", "/" .. tenant .. "/oauth/authorize?" .. form({
      { "response_type", "code" }, { "client_id", client_id }, { "redirect_uri", urlencode("https://app.example/cb") },
      { "scope", "accounts" }, { "state", "st" }, { "code_challenge", state.challenge },
      { "code_challenge_method", "S256" } })
  end, 303 },
  { "① GET", function() return "GET", flow_path .. "/account" end, 200 },
  { "① POST", function()
    return "POST", flow_path .. "/account", csrf_form({ { "branch", branch }, { "account_type", "1" },
                                                        { "account_number", number } })
  end, 303 },
  { "② GET", function() return "GET", flow_path .. "/customer" end, 200 },
  { "② POST", function()
    return "POST", flow_path .. "/customer", csrf_form({ { "name_kana", name_query }, { "birth_year", "1980" },
      { "birth_month", "01" }, { "birth_day", "01" }, { "phone", phone }, { "email", "b%40example.jp" },
      { "email_confirm", "b%40example.jp" } })
  end, 303 },
  { "③ GET", function() return "GET", flow_path .. "/phone" end, 200 },
  { "③ POST", function() return "POST", flow_path .. "/phone", csrf_form() end, 303 },
  { "④ GET", function() return "GET", flow_path .. "/call" end, 200 },
  { "webhook", function()
    local params = { CallSid = "CA" .. random_hex(16), AccountSid = "AC" .. string.rep("0", 32),
                     From = "+81" .. phone:sub(2), To = "+81" .. (state.pool or ""):sub(2),
                     CallStatus = "ringing", Direction = "inbound" }
    local fields = {}
    for name, value in pairs(params) do fields[#fields + 1] = { name, urlencode(value) } end
    local signature = twilio_signature(origin .. "/telephony/inbound", params, telephony_token)
    return "POST", "/telephony/inbound", form(fields), { ["X-Twilio-Signature"] = signature }, true
  end, 200 },
  { "④ POST", function() return "POST", flow_path .. "/call", csrf_form() end, 303 },
  { "⑤ GET", function() return "GET", flow_path .. "/pin" end, 200 },
  { "⑤ POST", function() return "POST", flow_path .. "/pin", csrf_form({ { "pin", "1234" } }) end, 303 },
  { "⑥ GET", function() return "GET", flow_path .. "/consent" end, 200 },
  -- The customer's browser then leaves for the app (another origin): its connection ends here, and
  -- the app's server exchanges the code on a connection of its own. On the browser's, the token
  -- would wait for what ⑥'s response does after it has gone out (the completion mail).
  { "⑥ POST", function()
    return "POST", flow_path .. "/consent", csrf_form({ { "agree", "y" } }), { Connection = "close" }
  end, 303 },
  { "token", function()
    return "POST", "/" .. tenant .. "/oauth/token", form({ { "grant_type", "authorization_code" },
      { "code", urlencode(state.code or "") }, { "redirect_uri", urlencode("https://app.example/cb") },
      { "code_verifier", state.verifier } }), { Authorization = basic }, true
  end, 200 },
  { "API /accounts", function()
    return "GET", "/" .. tenant .. "/api/v1/accounts", nil, { Authorization = "Bearer " .. (state.access or "") }, true
  end, 200 },
}

local index, cookie, started = 1, nil, 0
local foreign = false  -- the step in flight is not the browser's (webhook, token, API): its cookies are not the customer's

local function restart()
  index, cookie, state = 1, nil, {}
end

function request()
  local step = steps[index]
  local method, path, body, headers, no_cookie = step[2]()
  foreign = no_cookie or false
  headers = headers or {}
  if body then headers["Content-Type"] = FORM end
  if cookie and not no_cookie then headers["Cookie"] = cookie end
  if not no_cookie then headers["Accept-Encoding"] = BROWSER_ENCODINGS end
  started = now()
  return wrk.format(method, path, headers, body)
end

local function failed(status, body)
  out:write("error ", index, " ", status, " ", ((body or ""):sub(1, 160):gsub("%s+", " ")), "\n")
  restart()
end

function response(status, headers, body)
  local elapsed = now() - started
  local step = steps[index]
  local name = step[1]
  out:write("lat ", index, " ", string.format("%.5f", elapsed), "\n")
  local problem
  body, problem = decoded(headers, body)
  if problem then return failed(status, problem) end
  if status ~= step[3] then return failed(status, body) end
  local set = headers["Set-Cookie"]
  if set and not foreign then cookie = set:match("^([^;]+)") end
  local csrf = body and body:match('name="csrf_token" value="([^"]+)"')
  if csrf then state.csrf = csrf end
  if name == "④ GET" then
    state.pool = body:match('class="button call%-button" href="tel:([0-9]+)"')
    if not state.pool then return failed(status, "no pool number on ④") end
  elseif name == "⑥ POST" then
    state.code = (headers["Location"] or ""):match("[?&]code=([^&]+)")
    if not state.code then return failed(status, "no code in " .. (headers["Location"] or "")) end
  elseif name == "token" then
    state.access = body:match('"access_token"%s*:%s*"([^"]+)"')
    if not state.access then return failed(status, body) end
  end
  index = index + 1
  if index > #steps then
    out:write("flow\n")
    restart()
  end
end

