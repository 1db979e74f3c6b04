-- wrk script: the stack's floor (bench/bench_floor.py): each connection walks a flow's requests in
-- order, each request the round trips its step makes in the product (bench/floor_app.py), again and
-- again. Run by bench_floor.py:
--
--   wrk -t N -c N -d 15s -s bench/floor.lua ORIGIN -- METHOD:PATH METHOD:PATH ...
--
-- Any answer but 200 is an error; wrk prints them as "Non-2xx or 3xx responses".

local steps = {}
local next_step = 1

function init(args)
  for _, arg in ipairs(args) do
    local method, path = arg:match("^(%u+):(.+)$")
    local body = nil
    local headers = {}
    if method == "POST" then
      body = "field=value"
      headers["Content-Type"] = "application/x-www-form-urlencoded"
    end
    steps[#steps + 1] = wrk.format(method, path, headers, body)
  end
end

function request()
  local r = steps[next_step]
  next_step = next_step % #steps + 1
  return r
end
