-- POST a form with a pre-sign-in session cookie and the CSRF token bound to it (CSRF stays on).
-- The session is signed client-side state, so one cookie and its token serve every request.
-- BENCH_BODY is the urlencoded form with "{i}" where the rotating user number goes; users
-- BENCH_USERS (space-separated) are taken in turn so no single user queues behind itself.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
local template = os.getenv("BENCH_BODY")
local users = {}
for u in string.gmatch(os.getenv("BENCH_USERS") or "0", "%S+") do
  users[#users + 1] = u
end
local n = 0

function init(args)
  n = math.random(#users)
end

function request()
  n = n % #users + 1
  local body = string.gsub(template, "{i}", users[n])
  return wrk.format(nil, nil, nil, body)
end
