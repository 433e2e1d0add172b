--- nnft.sandbox: lock the Lua state down for an untrusted recipe (`nnft --sandbox recipe.lua out=DIR`).
--
-- The interpreter calls install{...} once, after `require "nnft"` and before any user code runs.
-- Afterwards the state has:
--   * no processes: os.execute, io.popen are refused;
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

  -- ---- processes ----
  os.execute = disabled("os.execute", "nnft --sandbox runs no processes")
  io.popen = disabled("io.popen", "nnft --sandbox runs no processes")

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
