--- nnft.reproduce: re-run a recipe from its manifest and compare every output's SHA-256.
--
--   nnft --reproduce results/manifest.json
-- calls require("nnft.reproduce").run("results/manifest.json", {interpreter = <nnft>}) and exits
-- 0 when every recorded output came out bit-identical, 1 otherwise.
local core = require "nnft.core"
local nio = require "nnft.io"
local C = core._io

local M = {}

local function shq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The text form of a recorded argument, as nnft.args parses it back.
local function arg_text(v)
  local t = type(v)
  if t == "number" then return C.fmt(v) end
  if t == "boolean" then return tostring(v) end
  if t == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = arg_text(v[i]) end
    return table.concat(parts, ",")
  end
  return tostring(v)
end

--- The command-line arguments that re-run the manifest's recipe with out= set to out.
function M.arguments(manifest, out)
  local argv = {}
  if type(manifest.args) == "table" then
    local keys = {}
    for k in pairs(manifest.args) do
      if k ~= "out" and manifest.args[k] ~= nio.null then keys[#keys + 1] = k end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do argv[#argv + 1] = k .. "=" .. arg_text(manifest.args[k]) end
  elseif type(manifest.argv) == "table" then
    for _, a in ipairs(manifest.argv) do
      if type(a) == "string" and not a:match("^out=") then argv[#argv + 1] = a end
    end
  end
  argv[#argv + 1] = "out=" .. out
  return argv
end

local function tail(path, nlines)
  local f = io.open(path, "r")
  if not f then return "" end
  local lines = {}
  for l in f:lines() do
    lines[#lines + 1] = l
    if #lines > nlines then table.remove(lines, 1) end
  end
  f:close()
  return table.concat(lines, "\n")
end

--- nnft.reproduce.run(manifest_path [, opts]) -> ok, report. See docs/api/reproduce.md.
function M.run(manifest_path, opts)
  local fname = "nnft.reproduce.run"
  if type(manifest_path) ~= "string" then error(fname .. ": expected the path of a manifest.json", 2) end
  opts = nio._check_options(opts, fname, { "interpreter", "keep", "quiet" }, 2)
  local say = opts.quiet and function() end or function(fmt, ...)
    io.stdout:write(fmt:format(...), "\n")
    io.stdout:flush()
  end
  local man = nio.read_json(manifest_path)
  if type(man) ~= "table" or type(man.format) ~= "string" or not man.format:match("^nnft%-manifest/") then
    error(("%s: '%s' is not an nnft manifest"):format(fname, manifest_path), 2)
  end
  if type(man.recipe) ~= "string" then
    error(("%s: '%s' records no recipe file (was the run made from a REPL?)"):format(fname, manifest_path), 2)
  end
  if C.stat(man.recipe) ~= "file" then
    error(("%s: the recipe '%s' no longer exists"):format(fname, man.recipe), 2)
  end
  local interp = opts.interpreter or (type(man.interpreter) == "string" and man.interpreter) or "nnft"
  local outputs = type(man.outputs) == "table" and man.outputs or {}

  local root = C.mkdtemp("nnft-reproduce-")
  local out = root .. "/out"
  local log = root .. "/log.txt"
  local argv = M.arguments(man, out)
  local quoted = {}
  for i, a in ipairs(argv) do quoted[i] = shq(a) end
  local cwd = type(man.cwd) == "string" and C.stat(man.cwd) == "directory" and man.cwd or "."
  local cmd = ("cd %s && %s %s %s >%s 2>&1"):format(shq(cwd), shq(interp), shq(man.recipe),
    table.concat(quoted, " "), shq(log))
  say("reproducing %s (%d outputs)", man.recipe, #outputs)
  say("  %s %s %s", interp, man.recipe, table.concat(argv, " "))
  local ok, how, code = os.execute(cmd)
  local report = { dir = root, out = out, files = {} }
  if not ok then
    say("reproduce: the recipe failed (%s %s); last lines of its output (%s):\n%s", tostring(how),
      tostring(code), log, tail(log, 20))
    report.failed = true
    return false, report
  end

  local all = #outputs > 0
  if #outputs == 0 then say("reproduce: the manifest records no outputs; nothing to compare") end
  for _, rec in ipairs(outputs) do
    local file, want = rec.file, rec.sha256
    local path = out .. "/" .. tostring(file)
    local status, got
    if C.stat(path) ~= "file" then
      status = "missing"
    else
      got = C.sha256_file(path, fname)
      status = got == want and "identical" or "DIFFERS"
    end
    if status ~= "identical" then all = false end
    report.files[#report.files + 1] = { file = file, status = status, sha256 = got, expected = want }
    if status == "DIFFERS" then
      say("  %-9s  %s  (recorded %s, now %s)", status, file, want:sub(1, 12), got:sub(1, 12))
    else
      say("  %-9s  %s", status, file)
    end
  end
  local same = 0
  for _, f in ipairs(report.files) do if f.status == "identical" then same = same + 1 end end
  if all then
    say("reproduce: all %d outputs identical", #outputs)
    if not opts.keep then
      for _, rec in ipairs(outputs) do os.remove(out .. "/" .. tostring(rec.file)) end
      os.remove(out .. "/manifest.json")
      os.remove(log)
      os.remove(out)
      if os.remove(root) then report.dir = nil end
    end
  elseif #outputs > 0 then
    say("reproduce: %d of %d outputs identical; the new run is in %s", same, #outputs, out)
  end
  return all, report
end

return M
