-- wrk script: POST an OpenAI chat completion; the model name comes after `--` on wrk's
-- command line (wrk ... -s bench/chat.lua URL -- bench-0ms).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function init(args)
   local model = args[1] or "bench-model"
   wrk.body = '{"model": "' .. model .. '", "messages": [{"role": "user", "content": "hi"}]}'
end
