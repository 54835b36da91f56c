-- wrk script: POST /v1/feedback rating one request (id after `--`) from a new source each
-- time (every write is a first rating: the insert path, not a 409).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local rid = "missing"
local n = 0

function init(args)
   rid = args[1] or rid
   n = math.random(1, 1000000000)
end

function request()
   n = n + 1
   local body = '{"request_id": "' .. rid .. '", "score": 0.8, "source": "bench-' .. n .. '"}'
   return wrk.format(nil, nil, nil, body)
end
