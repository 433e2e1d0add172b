--- Helpers shared by the Lua specs: shell quoting, whole-file reads and writes, fixture and
-- temporary directories, and running the interpreter named by NNFT_BIN as a child process.
local M = {}

--- s quoted for the shell.
function M.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- The contents of a file, or nil if it cannot be opened.
function M.slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Write s to path (raising on failure).
function M.spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

--- The names in a directory (`ls -A` order, i.e. sorted).
function M.listdir(dir)
  local p = assert(io.popen("ls -A " .. M.q(dir)))
  local names = {}
  for l in p:lines() do names[#names + 1] = l end
  p:close()
  return names
end

--- tests/data as an absolute path, found from this file's own path.
function M.data_dir()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = (src:match("^(.*)/lua/[^/]*$") or "tests") .. "/data"
  if dir:sub(1, 1) ~= "/" then
    local p = assert(io.popen("pwd"))
    dir = p:read("l") .. "/" .. dir
    p:close()
  end
  return dir
end

--- A fresh temporary directory, and its removal (only ever below /tmp).
function M.tmpdir()
  local p = assert(io.popen("mktemp -d"))
  local d = p:read("l")
  p:close()
  return d
end

function M.rmdir(d)
  if d and d:match("^/tmp/") then os.execute("rm -rf " .. M.q(d)) end
end

--- Run the interpreter `bin` with the shell words `args`. opts.stdin: a string fed on standard
-- input (else /dev/null); opts.env: prepended `VAR=value ...`; opts.cwd: the directory to run in.
-- Returns { code = exit status, out = stdout, err = stderr }.
function M.run(bin, args, opts)
  opts = opts or {}
  local o, e, i = os.tmpname(), os.tmpname(), os.tmpname()
  M.spit(i, opts.stdin or "")
  local cmd = ("%s %s %s <%s >%s 2>%s; echo $?"):format(opts.env or "", M.q(bin), args, i, o, e)
  if opts.cwd then cmd = "cd " .. M.q(opts.cwd) .. " && " .. cmd end
  local p = assert(io.popen(cmd))
  local code = tonumber(p:read("a"))
  p:close()
  local r = { code = code, out = M.slurp(o) or "", err = M.slurp(e) or "" }
  os.remove(o)
  os.remove(e)
  os.remove(i)
  return r
end

--- A rows x cols Mat of deterministic pseudo-random numbers in [-1, 1) times scale (default 1),
-- from a 63-bit LCG seeded with seed (default 1): independent of nnft's own generators.
function M.randmat(rows, cols, seed, scale)
  local nnft = require "nnft"
  local s = seed or 1
  scale = scale or 1
  return nnft.mat.fromfunction(rows, cols, function()
    s = (s * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff
    return scale * (((s >> 11) / 4503599627370496.0) - 1.0)
  end)
end

--- The message of the error f(...) raises (a test failure if it raises none).
function M.errmsg(f, ...)
  local ok, err = pcall(f, ...)
  if ok then error("expected an error", 2) end -- busted's assert is not visible in modules
  return tostring(err)
end

return M
