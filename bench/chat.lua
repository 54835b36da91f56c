-- wrk script: POST an OpenAI chat completion body
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model": "bench-model", "messages": [{"role": "user", "content": "hi"}]}'
