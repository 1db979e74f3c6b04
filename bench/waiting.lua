-- wrk script for bench/bench_waiting.py: every connection is a customer waiting on ④ whose browser
-- polls the status every POLL_MS. Each thread cycles through its share of the customers' cookies
-- (COOKIES_FILE, one "Cookie" header value a line). The first request of every connection waits a
-- random 0..POLL_MS, so the customers' polls are spread over the interval, not sent in one burst.

local path = os.getenv("POLL_PATH")
local poll_ms = tonumber(os.getenv("POLL_MS"))
local all = {}
for line in io.lines(os.getenv("COOKIES_FILE")) do
  all[#all + 1] = line
end

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

local cookies, next_cookie, first_delays = {}, 1, 0

function init(args)
  local threads = tonumber(os.getenv("WRK_THREADS"))
  for i = id, #all, threads do
    cookies[#cookies + 1] = all[i]
  end
  first_delays = tonumber(os.getenv("WRK_CONNECTIONS")) / threads
  math.randomseed(id * 7919)
end

function request()
  local cookie = cookies[next_cookie]
  next_cookie = next_cookie % #cookies + 1
  return wrk.format("GET", path, {["Cookie"] = cookie, ["HX-Request"] = "true", ["HX-Target"] = "call-status"})
end

function delay()
  if first_delays > 0 then
    first_delays = first_delays - 1
    return math.random(0, poll_ms)
  end
  return poll_ms
end
