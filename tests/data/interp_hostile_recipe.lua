-- A hostile recipe for tests/lua/sandbox_spec.lua: run as
--   nnft --sandbox interp_hostile_recipe.lua out=DIR victim=FILE
-- It tries every escape it knows and prints one line per attempt:
--   REFUSED <tab> name <tab> message     the sandbox stopped it (what the spec expects)
--   ESCAPED <tab> name                   it worked (a sandbox hole)
-- and then does the legitimate things a recipe does (OK <tab> name).
local opts = {}
for _, a in ipairs({ ... }) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if k then opts[k] = v end
end
local out, victim = assert(opts.out, "out= missing"), assert(opts.victim, "victim= missing")

local function first_line(s) return (tostring(s):gsub("\n.*", "")) end

-- f must raise, or return nil/false plus a message, for the attempt to count as refused.
local function attempt(name, f)
  local ok, r, msg = pcall(f)
  if not ok then
    print("REFUSED\t" .. name .. "\t" .. first_line(r))
  elseif r == nil or r == false then
    print("REFUSED\t" .. name .. "\t" .. first_line(msg))
  else
    print("ESCAPED\t" .. name)
  end
end

local function legit(name, f)
  local ok, err = pcall(f)
  print((ok and "OK\t" or "FAILED\t") .. name .. (ok and "" or "\t" .. first_line(err)))
end

-- ---- processes ----
attempt("os.execute", function() return os.execute("touch " .. out .. "/../escaped-exec") end)
attempt("io.popen", function() return io.popen("echo escaped") end)

-- ---- writes outside out= ----
attempt("io.open ../", function() return io.open(out .. "/../escaped.txt", "w") end)
attempt("io.open absolute", function() return io.open(victim, "a") end)
attempt("io.open r+", function() return io.open(victim, "r+") end)
attempt("io.open new dirs ..", function() return io.open(out .. "/a/b/../../../escaped.txt", "w") end)
attempt("io.open symlink", function() return io.open(out .. "/link", "w") end)
attempt("io.output", function() return io.output(out .. "/../escaped.txt") end)
attempt("os.remove", function() return os.remove(victim) end)
attempt("os.rename from outside", function() return os.rename(victim, out .. "/stolen.txt") end)
attempt("os.rename to outside", function()
  local f = assert(io.open(out .. "/moveme.txt", "w"))
  f:close()
  return os.rename(out .. "/moveme.txt", out .. "/../escaped.txt")
end)
attempt("os.tmpname", function() return os.tmpname() end)
attempt("io.tmpfile", function() return io.tmpfile() end)
attempt("nnft._io.write_file", function()
  nnft._io.write_file(out .. "/../escaped.txt", "x")
  return true
end)
attempt("nnft._io.mkdir_p", function()
  nnft._io.mkdir_p(out .. "/../escaped-dir")
  return true
end)
attempt("nnft._io.mkdtemp", function() return nnft._io.mkdtemp("escaped") end)
attempt("reopen nnft.core", function()
  package.loaded["nnft.core"] = nil
  local core = require "nnft.core"
  core._io.write_file(out .. "/../escaped.txt", "x")
  return true
end)

-- ---- C code ----
attempt("package.loadlib", function()
  return package.loadlib("/usr/lib/x86_64-linux-gnu/lua/5.4/lfs.so", "luaopen_lfs")
end)
attempt("require lfs", function() return require "lfs" end)
attempt("require cjson.safe", function() return require "cjson.safe" end)
attempt("require lpeg via cpath", function()
  package.cpath = "/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;" .. package.cpath
  return require "lpeg"
end)

-- ---- binary chunks ----
local binary = "\27LuaT\0\25\147\r\n\26\n\4\8\8xV\0\0\0\0\0\0\0\0\0\0\0(w@\1"
attempt("string.dump", function() return string.dump(function() end) end)
attempt("string metatable dump", function() return getmetatable("").__index.dump(print) end)
attempt("load binary", function() return load(binary) end)
attempt("load binary mode b", function() return load(binary, "x", "b") end)
attempt("load binary reader", function()
  local done = false
  return load(function() if done then return nil end done = true return binary end)
end)
local evil = out .. "/evil.lua"
do
  local f = assert(io.open(evil, "wb"))
  f:write(binary)
  f:close()
end
attempt("loadfile binary", function() return loadfile(evil) end)
attempt("dofile binary", function() return dofile(evil) end)
attempt("require binary", function()
  package.path = out .. "/?.lua;" .. package.path
  return require "evil"
end)

-- ---- debug ----
attempt("debug.getinfo", function() return debug.getinfo(1) end)
attempt("debug.sethook", function() return debug.sethook() end)
attempt("debug.getupvalue", function() return debug.getupvalue(io.open, 1) end)
attempt("debug.getregistry", function() return debug.getregistry() end)
attempt("require debug", function() return require("debug").setupvalue end)

-- ---- what a recipe may do ----
legit("write into out", function()
  local f = assert(io.open(out .. "/ok.txt", "w"))
  assert(f:write("written by the recipe\n"))
  assert(f:close())
end)
legit("atomic write (temp + rename)", function()
  local tmp = out .. "/data.json.tmp"
  local f = assert(io.open(tmp, "w"))
  f:write('{"x": 1}\n')
  f:close()
  assert(os.rename(tmp, out .. "/data.json"))
end)
legit("nnft.io.write_text", function()
  local ok, nio = pcall(require, "nnft.io")
  if ok and type(nio) == "table" and nio.write_text then
    nio.write_text(out .. "/io.txt", "via nnft.io\n")
  else
    local f = assert(io.open(out .. "/sub-io-skipped.txt", "w"))
    f:close()
  end
end)
legit("remove inside out", function()
  local f = assert(io.open(out .. "/gone.txt", "w"))
  f:close()
  assert(os.remove(out .. "/gone.txt"))
end)
legit("read outside out", function()
  local f = assert(io.open(victim, "r"))
  assert(f:read("a"):match("victim"))
  f:close()
end)
legit("require a Lua module beside the recipe", function()
  assert(require("interp_sandbox_helper").answer == 42)
end)
legit("require cjson (preloaded for nnft.io)", function()
  assert(require("cjson").encode({ 1 }) == "[1]")
end)
legit("load text", function() assert(load("return 1 + 1")() == 2) end)
legit("debug.traceback", function() assert(debug.traceback("x"):match("^x")) end)
legit("nnft works", function() assert(nnft.mat.zeros(2, 2):shape() == 2) end)
print("END")
