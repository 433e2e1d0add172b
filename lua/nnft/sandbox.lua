--- nnft.sandbox: lock the Lua state down for an untrusted recipe (`nnft --sandbox recipe.lua out=DIR`).
--
-- The interpreter calls install{...} once, after `require "nnft"` and before any user code runs.
-- Afterwards the state has:
--   * no processes: os.execute, io.popen are refused; nnft.plot alone runs gnuplot, through a
--     private runner that checks the script and the files (see "gnuplot for nnft.plot" below);
--   * writes only under out=: io.open for writing, io.output(path), os.remove, os.rename (both
--     names) check the path, resolved with realpath on its directory part (and on the file itself
--     when it exists), so `out/../../x`, symbolic links and hard links cannot escape; os.tmpname
--     and io.tmpfile (files outside out=) are refused; no out= argument means no writes at all;
--   * reading everywhere (a recipe reads the data sets its arguments name; nothing read can leave
--     the machine, since nothing executes and only out= is written);
--   * no C code: package.loadlib is refused, package.searchers = { preload, Lua text files from
--     nnft's lua dir and the recipe's directory }; C modules nnft's own Lua layer needs (cjson)
--     are loaded before the lock-down and so stay available through require; C openers are
--     removed from package.preload (so "nnft.core" cannot be opened afresh, unchecked);
--   * no binary chunks: load, loadfile, dofile and require compile text only; string.dump is
--     refused;
--   * no debug library (debug.traceback, which only reads, stays).
-- Every refusal raises an error that starts with "sandbox:" and says what to do instead.
local M = {}

-- nnft._io (src/lua/l_io.c) functions that write: name -> position of the caller's name argument
-- (the path is always the first argument). They get the same check as io.open for writing.
M.c_writers = { write_file = 3, write_npy = 3, mkdir_p = 2 }
-- nnft._io functions that only read or compute. Any other nnft._io function is refused under the
-- sandbox, so a new writer added to l_io.c cannot become a hole: list it above.
M.c_readers = {
  read_npy = true, npy_header = true, sha256 = true, sha256_file = true, stat = true,
  isatty = true, clock = true, realpath = true, getcwd = true, hostname = true, fmt = true,
  mat_csv = true,
}

-- C modules loaded before the lock-down because nnft's Lua layer requires them.
M.preload = { "cjson" }

-- Captured now, before any recipe can replace a field of a shared library table.
local type, error, select, tostring, ipairs, pcall = type, error, select, tostring, ipairs, pcall
local setmetatable = setmetatable
local ssub, smatch, sformat, sgsub = string.sub, string.match, string.format, string.gsub
local tconcat = table.concat

local installed = false

-- Raise a refusal at the recipe's call (refuse <- writable <- wrapper <- recipe: level 4).
local function refuse(fmt, ...)
  error("sandbox: " .. sformat(fmt, ...), 4)
end

-- A stub for a function the sandbox removes.
local function disabled(name, why)
  return function()
    error(sformat("sandbox: %s is disabled (%s)", name, why), 2)
  end
end

-- ---------------------------------------------------------------- gnuplot for nnft.plot
-- nnft.plot cannot use io.popen under the sandbox. install() builds a runner around the io.popen
-- it captured before disabling it and hands it to nnft.plot (loaded then, before any recipe
-- code) through nnft.plot._set_runner, which keeps it in a local: no table a recipe can reach
-- holds it, and debug (which could read upvalues) is gone. The runner itself trusts nothing it
-- is given: it
--   * runs only the gnuplot found on the PATH (absolute directories only, not inside out=) when
--     the sandbox was installed, with -d (no ~/.gnuplot or gnuplotrc), through /bin/sh with every
--     argument single-quoted, in the picture's directory, which must be out= or inside it;
--   * checks the script against the grammar nnft.plot writes (check_script below: a whitelist of
--     commands, single-quoted strings, data files as './name') and refuses anything else, so
--     no system(), `...`, '<cmd', "|cmd", load, call, print, save, set table ... can get through;
--   * checks the script file and every picture gnuplot will write like io.open for writing
--     (inside out=, no symbolic link out, no hard link);
--   * writes the script itself (the file gnuplot reads is the text it checked) and stops the
--     garbage collector from the checks until gnuplot has exited, so no finalizer of the recipe
--     runs in between.

-- Key position words nnft.plot accepts (a copy: nnft.plot's table is reachable by a recipe).
local key_words = {}
for w in string.gmatch("left right center top bottom inside outside lmargin rmargin tmargin "
  .. "bmargin above below over under horizontal vertical box nobox opaque noopaque reverse "
  .. "noreverse invert noinvert Left Right on off", "%S+") do key_words[w] = true end

local sfind, sgmatch = string.find, string.gmatch
local collectgarbage, next, rawget, rawlen = collectgarbage, next, rawget, rawlen

local STR, NL = "\1", "\2" -- placeholders for a single-quoted string and for the literal "\n"

-- One logical line -> the line with its strings replaced by STR / NL, and the strings' contents
-- (in order); nil, reason for anything but single-quoted strings and the literal "\n".
local function tokenize(line)
  local out, strs, i, n = {}, {}, 1, #line
  while i <= n do
    local c = ssub(line, i, i)
    if c == "'" then
      local j, buf = i + 1, {}
      while true do
        local k = sfind(line, "'", j, true)
        if not k then return nil, "an unterminated string" end
        buf[#buf + 1] = ssub(line, j, k - 1)
        if ssub(line, k + 1, k + 1) == "'" then
          buf[#buf + 1] = "'"
          j = k + 2
        else
          i = k + 1
          break
        end
      end
      strs[#strs + 1] = tconcat(buf)
      out[#out + 1] = STR
    elseif c == '"' then
      if ssub(line, i, i + 3) ~= '"\\n"' then return nil, "a double-quoted string" end
      out[#out + 1] = NL
      i = i + 4
    elseif smatch(c, "[%w %._,:%(%)%[%]{}%$%-%+%*=!>]") then
      out[#out + 1] = c
      i = i + 1
    else
      return nil, sformat("the character '%s' outside a string", c)
    end
  end
  return tconcat(out), strs
end

-- A text expression: STR, or STR."\n".STR...
local function text_ok(t)
  return t ~= nil and sgsub(t, "%." .. NL .. "%." .. STR, "") == STR
end

local NUM = "^[%-%+]?[%d%.]+[eE]?[%-%+]?%d*$"

-- The plot command's items: './file' skip n [every ::a::b] using ... with style [pointtype -1]
-- [linecolor rgb 'c'] [linewidth w] (title TEXT | notitle). Returns true or nil, reason.
local function plot_ok(rest, strs)
  local k = 0 -- strings consumed so far
  local styles = { lines = true, points = true, linespoints = true, yerrorbars = true,
                   yerrorlines = true, boxes = true }
  for item in sgmatch(rest .. ",", "([^,]*),") do
    item = smatch(item, "^%s*(.-)%s*$")
    local function eat(pat)
      local a, b = sfind(item, pat)
      if a ~= 1 then return nil end
      local got = ssub(item, 1, b)
      item = ssub(item, b + 1)
      for _ in sgmatch(got, STR) do k = k + 1 end
      return got
    end
    if not eat("^" .. STR) then return nil, "a plot item that does not start with its data file" end
    local file = strs[k]
    if not smatch(file, "^%./[^/]+$") then return nil, sformat("the data file '%s' (only './name')", file) end
    if not eat("^ skip %d+") then return nil, "a plot item without skip" end
    eat("^ every ::%d+::%d+")
    if not (eat("^ using 2:3:4") or eat("^ using 2:3") or eat("^ using 3:[45]:%(%$2%-%$1%)")) then
      return nil, "a plot item with an unexpected using"
    end
    local w = eat("^ with %a+")
    if not w or not styles[ssub(w, 7)] then return nil, "a plot item with an unexpected style" end
    eat("^ pointtype %-1")
    if eat("^ linecolor rgb " .. STR) then
      local c = strs[k]
      if not (smatch(c, "^#%x+$") or smatch(c, "^%a[%w%-]*$")) then
        return nil, sformat("the colour '%s'", c)
      end
    end
    local lw = eat("^ linewidth [%d%.eE%+%-]+")
    if lw and not smatch(ssub(lw, 12), NUM) then return nil, "a line width that is not a number" end
    if item ~= " notitle" and not (ssub(item, 1, 7) == " title " and text_ok(ssub(item, 8))) then
      return nil, "a plot item with an unexpected title"
    end
    for _ in sgmatch(item, STR) do k = k + 1 end
  end
  return true
end

local function range_ok(a, b)
  return (smatch(a, NUM) or a == "*") and (smatch(b, NUM) or b == "*")
end

-- The script nnft.plot writes, and nothing else: nil, reason when a line does not fit.
local function check_script(text)
  if type(text) ~= "string" then return nil, "no script" end
  if sfind(text, "[%z\1-\9\11-\31\127]") then return nil, "a control character" end
  -- gnuplot joins a line ending in a backslash with the next one, before anything else.
  text = sgsub(text, "\\\n", "")
  local lnum = 0
  for raw in sgmatch(text, "([^\n]*)\n?") do
    lnum = lnum + 1
    local ok, why = true, nil
    if raw == "" then
      -- an empty line
    elseif smatch(raw, "^#") then
      if sfind(raw, "[`@\\]") then ok, why = false, "a comment with ` @ or \\" end
    else
      local l, strs = tokenize(raw)
      if not l then
        ok, why = false, strs
      else
        local a, b
        if smatch(l, "^set [xy]label ") then
          ok = text_ok(ssub(l, 12))
        elseif smatch(l, "^set title ") then
          ok = text_ok(ssub(l, 11))
        elseif l == "set logscale x" or l == "set logscale y" or l == "set grid" or l == "unset key"
            or l == "set encoding utf8" or l == "unset output" or l == "set style fill solid 0.5 border -1"
            or l == "set output png_out" or l == "set output svg_out" then
          ok = true
        elseif l == "set datafile separator " .. STR then
          ok = strs[1] == ","
        elseif smatch(l, "^set [xy]range %[") then
          a, b = smatch(l, "^set [xy]range %[([^:%]]+):([^:%]]+)%]$")
          ok = a ~= nil and range_ok(a, b)
        elseif smatch(l, "^set key ") then
          ok = smatch(l, "^set key [%a ]+$") ~= nil
          if ok then
            for w in sgmatch(ssub(l, 9), "%S+") do ok = ok and key_words[w] == true end
          end
        elseif smatch(l, "^if %(!exists%(") then
          a, b = smatch(l, "^if %(!exists%(" .. STR .. "%)%) (%a+_out) = " .. STR .. "$")
          ok = a ~= nil and (a == "png_out" or a == "svg_out") and strs[1] == a
            and smatch(strs[2], "^%./[^/]+$") ~= nil
        elseif smatch(l, "^if %(strstrt") then
          ok = smatch(l, "^if %(strstrt%(GPVAL_TERMINALS, " .. STR .. "%) > 0%) { set terminal "
            .. "pngcairo size %d+,%d+ } else { set terminal png size %d+,%d+ }$") ~= nil
            and strs[1] == " pngcairo "
        elseif smatch(l, "^set terminal svg size %d+,%d+$") then
          ok = true
        elseif ssub(l, 1, 5) == "plot " then
          ok, why = plot_ok(ssub(l, 6), strs)
        else
          ok = false
        end
        if not ok and not why then why = "a command nnft.plot does not write" end
      end
    end
    if not ok then return nil, sformat("line %d: %s", lnum, why or "?") end
  end
  return true
end
M._check_script = check_script -- for tests; it holds no capability

-- The first gnuplot on the PATH (absolute directories only), or nil.
local function find_gnuplot(open, close, resolve, root, inside)
  local path = os.getenv("PATH") or "/usr/local/bin:/usr/bin:/bin"
  for d in sgmatch(path, "[^:]+") do
    if ssub(d, 1, 1) == "/" then
      local p = d .. "/gnuplot"
      local f = open(p, "r")
      if f then
        close(f)
        local target = resolve(p)
        if target and not (root and (target == root or inside(target))) then return p end
      end
    end
  end
  return nil
end

local function shq(s) return "'" .. sgsub(s, "'", "'\\''") .. "'" end

local runner_made = false

local function make_gnuplot_runner(c)
  if runner_made then error("nnft.sandbox: the gnuplot runner exists already", 2) end
  runner_made = true
  local meth = getmetatable(io.stdout).__index
  local f_write, f_read, f_close = meth.write, meth.read, meth.close
  local popen, open, rename, remove = c.popen, c.open, c.rename, c.remove
  local resolve, writable, root, inside = c.resolve, c.writable, c.root, c.inside
  local gnuplot = find_gnuplot(open, f_close, resolve, root, inside)
  local count = 0

  local function refuse_run(fmt, ...) error("sandbox: nnft.plot: " .. sformat(fmt, ...), 0) end

  -- Everything between the checks and the end of gnuplot runs with the collector stopped.
  local function run(dir, base, text, formats, tmps)
    if not root then
      refuse_run("this recipe was given no out= directory; figures are written only inside it "
        .. "(nnft --sandbox recipe.lua out=DIR)")
    end
    local rdir = resolve(dir)
    if not rdir or not (rdir == root or inside(rdir)) then
      refuse_run("the directory '%s' of the picture is outside the out= directory '%s'", dir, root)
    end
    local ok, why = check_script(text)
    if not ok then refuse_run("refusing to run gnuplot on this script (%s)", why) end
    local gp = dir .. "/" .. base .. ".gp"
    writable("nnft.plot", gp)
    local assigns = {}
    for i = 1, #formats do
      local f, t = formats[i], tmps[formats[i]]
      if type(t) ~= "string" or not smatch(t, "^[^/%c]+$") then refuse_run("bad temporary name") end
      writable("nnft.plot", dir .. "/" .. t)
      assigns[#assigns + 1] = sformat("%s_out='./%s'", f, (sgsub(t, "'", "''")))
    end
    if not gnuplot then return false, "exit", 127, "" end
    count = count + 1
    local tmp = sformat("%s.tmp-gp-%d", gp, count)
    writable("nnft.plot", tmp)
    local fh, err = open(tmp, "wb")
    if not fh then refuse_run("cannot write '%s': %s", tmp, tostring(err)) end
    local wok, werr = f_write(fh, text)
    f_close(fh)
    if not wok then remove(tmp); refuse_run("cannot write '%s': %s", tmp, tostring(werr)) end
    local rok, rerr = rename(tmp, gp)
    if not rok then remove(tmp); refuse_run("cannot write '%s': %s", gp, tostring(rerr)) end
    local cmd = sformat("cd %s && %s -d -e %s %s 2>&1", shq(dir), shq(gnuplot),
      shq(tconcat(assigns, "; ")), shq("./" .. base .. ".gp"))
    local p = popen(cmd, "r")
    if not p then refuse_run("cannot start gnuplot") end
    local log = f_read(p, "a") or ""
    local cok, how, code = f_close(p)
    return cok, how, code, log
  end

  return function(req)
    if type(req) ~= "table" then refuse_run("bad request") end
    local dir, base, text = rawget(req, "dir"), rawget(req, "base"), rawget(req, "script")
    local formats, tmps = {}, {}
    local rf, rt = rawget(req, "formats"), rawget(req, "tmps")
    if type(dir) ~= "string" or type(base) ~= "string" or type(text) ~= "string"
        or type(rf) ~= "table" or type(rt) ~= "table" or sfind(dir, "%c") or sfind(base, "[/%c]")
        or base == "" then
      refuse_run("bad request")
    end
    local seen = {}
    for i = 1, rawlen(rf) do
      local f = rawget(rf, i)
      if (f ~= "png" and f ~= "svg") or seen[f] then refuse_run("bad format") end
      seen[f] = true
      formats[i] = f
      tmps[f] = rawget(rt, f)
    end
    local was = collectgarbage("isrunning")
    collectgarbage("stop")
    local r = { pcall(run, dir, base, text, formats, tmps) }
    if was then collectgarbage("restart") end
    if not r[1] then error(r[2], 0) end
    return r[2], r[3], r[4], r[5]
  end
end

-- Hand the runner to nnft.plot (loaded now, before any recipe code, so it captures clean
-- library functions).
local function give_plot_runner(runner)
  local plot = require "nnft.plot"
  plot._set_runner(runner)
end

--- Lock the state down. opts: args (the recipe's arguments: out= is taken from them), script
-- (the recipe's path; its directory may hold Lua modules), lua_dir (nnft's Lua modules),
-- resolve (C: path -> canonical target, link count | nil, reason), mkdir (C: mkdir -p).
function M.install(opts)
  if installed then error("nnft.sandbox.install: the sandbox is already installed", 2) end
  if type(opts) ~= "table" or type(opts.resolve) ~= "function" or type(opts.mkdir) ~= "function" then
    error("nnft.sandbox.install: opts.resolve and opts.mkdir must be functions", 2)
  end
  installed = true
  local resolve = opts.resolve

  -- out=: the last one (nnft.args refuses a repeated key anyway); created now so it resolves.
  local out
  for _, a in ipairs(opts.args or {}) do
    local v = type(a) == "string" and smatch(a, "^out=(.*)$")
    if v then out = v end
  end
  local root
  if out and out ~= "" then
    local ok, err = opts.mkdir(out)
    if not ok then error("nnft --sandbox: " .. err, 0) end
    root = resolve(out)
    if not root then error("nnft --sandbox: cannot resolve out=" .. out, 0) end
  end

  for _, name in ipairs(M.preload) do pcall(require, name) end

  local o_open, o_close, o_output = io.open, io.close, io.output
  local o_remove, o_rename = os.remove, os.rename
  local o_load, o_loadfile = load, loadfile
  local o_traceback = debug.traceback
  local preload_searcher = package.searchers[1]

  local function inside(target)
    if root == "/" then return true end
    return target ~= root and ssub(target, 1, #root + 1) == root .. "/"
  end

  -- The path a writing function may use, or a refusal naming the function and the reason.
  -- The checked string itself is what the original function gets (no second conversion).
  local function writable(fname, path)
    if type(path) == "number" then path = tostring(path) end
    if type(path) ~= "string" then
      error(sformat("bad argument #1 to '%s' (string expected, got %s)", fname, type(path)), 3)
    end
    if not root then
      refuse("%s('%s') refused: this recipe was given no out= directory, and writes are allowed "
        .. "only inside it (nnft --sandbox recipe.lua out=DIR)", fname, path)
    end
    local target, info = resolve(path)
    if not target then refuse("%s('%s') refused: %s", fname, path, info) end
    if target == root then
      refuse("%s('%s') refused: that is the out= directory itself; only what is inside it may be "
        .. "written", fname, path)
    end
    if not inside(target) then
      refuse("%s('%s') refused: '%s' is outside the out= directory '%s'", fname, path, target, root)
    end
    if info > 1 then
      refuse("%s('%s') refused: the file has %d hard links, so writing it could change a file "
        .. "outside out=", fname, path, info)
    end
    return path
  end

  -- ---- files ----
  io.open = function(path, mode)
    if mode == nil or mode == "r" or mode == "rb" then return o_open(path, mode) end
    return o_open(writable("io.open", path), mode)
  end
  io.output = function(file)
    if type(file) == "string" or type(file) == "number" then
      return o_output(writable("io.output", file))
    end
    return o_output(file)
  end
  os.remove = function(path)
    return o_remove(writable("os.remove", path))
  end
  os.rename = function(from, to)
    local a = writable("os.rename", from)
    return o_rename(a, writable("os.rename", to))
  end
  os.tmpname = disabled("os.tmpname", "it creates a file outside out=; name a file under out= instead")
  io.tmpfile = disabled("io.tmpfile", "it creates a file outside out=; open a file under out= instead")

  -- ---- nnft's C file functions (nnft._io): the same rules; what is unknown is refused ----
  local n = package.loaded.nnft
  local cio = type(n) == "table" and rawget(n, "_io")
  if type(cio) == "table" then
    local names = {}
    for k, f in next, cio do
      if type(k) == "string" and type(f) == "function" then names[#names + 1] = k end
    end
    for _, k in ipairs(names) do
      local f = cio[k]
      local fpos = M.c_writers[k]
      if fpos then -- path first; the caller's function name (for messages) at fpos
        cio[k] = function(path, ...)
          local caller = select(fpos - 1, ...)
          return f(writable(type(caller) == "string" and caller or "nnft._io." .. k, path), ...)
        end
      elseif not M.c_readers[k] then
        cio[k] = disabled("nnft._io." .. k, "nnft --sandbox allows only nnft's known file functions")
      end
    end
  end

  -- ---- processes: none, except gnuplot for nnft.plot (through a private runner) ----
  local o_popen = io.popen
  os.execute = disabled("os.execute", "nnft --sandbox runs no processes")
  io.popen = disabled("io.popen", "nnft --sandbox runs no processes (nnft.plot still draws figures)")
  give_plot_runner(make_gnuplot_runner{ popen = o_popen, open = o_open, rename = o_rename,
    remove = o_remove, resolve = resolve, writable = writable, root = root, inside = inside })

  -- ---- code: text chunks only, no C ----
  -- nil, message as load does; a binary chunk's message says why it is refused.
  local function explain(f, err)
    if not f and type(err) == "string" and smatch(err, "binary chunk") then
      err = "sandbox: " .. err .. "; nnft --sandbox loads text chunks only"
    end
    return f, err
  end
  load = function(chunk, name, mode, ...)
    if select("#", ...) > 0 then return explain(o_load(chunk, name, "t", ...)) end
    return explain(o_load(chunk, name, "t"))
  end
  loadfile = function(fname, mode, ...)
    if select("#", ...) > 0 then return explain(o_loadfile(fname, "t", ...)) end
    return explain(o_loadfile(fname, "t"))
  end
  dofile = function(fname)
    local f, err = explain(o_loadfile(fname, "t"))
    if not f then error(err, 2) end
    return f()
  end
  string.dump = disabled("string.dump", "binary chunks cannot be loaded under nnft --sandbox")
  package.loadlib = disabled("package.loadlib", "nnft --sandbox loads no C code")

  local recipe_dir = "."
  if type(opts.script) == "string" then recipe_dir = smatch(opts.script, "^(.*)/[^/]*$") or "." end
  local dirs = { opts.lua_dir or ".", recipe_dir }
  local function lua_searcher(name)
    local fname = sgsub(name, "%.", "/")
    local tried = {}
    for _, d in ipairs(dirs) do
      for _, tmpl in ipairs({ "%s/%s.lua", "%s/%s/init.lua" }) do
        local p = sformat(tmpl, d, fname)
        local f = o_open(p, "r")
        if f then
          o_close(f)
          local chunk, err = o_loadfile(p, "t")
          if not chunk then
            error(sformat("error loading module '%s' from file '%s':\n\t%s", name, p, err), 0)
          end
          return chunk, p
        end
        tried[#tried + 1] = "no file '" .. p .. "'"
      end
    end
    tried[#tried + 1] = "(nnft --sandbox: only Lua modules from nnft's lua directory and the "
      .. "recipe's directory can be required; C modules are disabled)"
    return tconcat(tried, "\n\t")
  end
  -- C openers in package.preload (nnft.core) would hand out fresh, unchecked C functions if a
  -- recipe cleared package.loaded and required them again: drop them (they are loaded already).
  local o_getinfo = debug.getinfo
  for name, opener in next, package.preload do
    if type(opener) == "function" and o_getinfo(opener, "S").what == "C" then
      package.preload[name] = nil
    end
  end
  package.searchers = { preload_searcher, lua_searcher }
  package.path = dirs[1] .. "/?.lua;" .. dirs[1] .. "/?/init.lua;" .. dirs[2] .. "/?.lua;"
    .. dirs[2] .. "/?/init.lua"
  package.cpath = ""

  -- ---- debug: only traceback, which reads ----
  local stub = setmetatable({ traceback = o_traceback }, {
    __index = function(_, k)
      error(sformat("sandbox: debug.%s is disabled (nnft --sandbox has no debug library)",
        tostring(k)), 2)
    end,
    __newindex = function() error("sandbox: the debug library is read-only", 2) end,
    __metatable = false,
  })
  debug = stub -- luacheck: ignore (the sandbox's purpose is to replace this global)
  package.loaded.debug = stub

  return root
end

--- True once install has run in this state.
function M.active()
  return installed
end

return M
