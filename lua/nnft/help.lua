--- nnft.help: documentation at the REPL, and the REPL's tab-completion candidates.
--
--   help()                   overview: modules, types, how to ask
--   help(nnft.mat.zeros)     the `### nnft.mat.zeros(...)` section of docs/api/*.md
--   help(m.row), help("Mat:row")   a method of the userdata type "nnft.Mat"
--   help(nnft.mat), help("nnft.mat")   a module: docs/api/mat.md's introduction and its functions
--   nnft.help.complete("nnft.ma")  -> { "nnft.mat" }   (what Tab offers in the REPL)
--
-- The interpreter makes this module the global `help` (it is callable). Documentation is read from
-- $NNFT_DOC_DIR, else the doc_dir the interpreter was built with (package.loaded["nnft.interp"]),
-- else the docs/ beside the lua/ directory this file was loaded from.
local M = {}

-- Modules lua/nnft/init.lua loads lazily on first access (pairs() cannot see them before).
local LAZY = {} -- the lazily loaded modules' short names, sorted
for k in pairs(require "nnft.modules") do LAZY[#LAZY + 1] = k end
table.sort(LAZY)

local KEYWORDS = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}

local STDLIB = { "string", "table", "math", "io", "os", "coroutine", "utf8", "package", "debug" }

local function interp()
  local t = package.loaded["nnft.interp"]
  return type(t) == "table" and t or nil
end

local function is_ident(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
end

-- Index t[k] without letting an __index error escape (completion runs inside readline).
local function get(t, k)
  local ok, v = pcall(function() return t[k] end)
  if ok then return v end
  return nil
end

-- The nnft table, loaded if need be (help works from stock lua5.4 too).
local function nnft_table()
  local n = package.loaded.nnft
  if type(n) ~= "table" then
    local ok, m = pcall(require, "nnft")
    n = ok and m or nil
  end
  return type(n) == "table" and n or nil
end

--- The documentation directory (holding api/*.md).
function M.docdir()
  local d = os.getenv("NNFT_DOC_DIR")
  if d and d ~= "" then return d end
  local it = interp()
  if it and type(it.doc_dir) == "string" then return it.doc_dir end
  local p = package.searchpath and package.searchpath("nnft.help", package.path)
  local root = p and p:match("^(.*)/lua/nnft/help%.lua$")
  if root then return root .. "/docs" end
  return "docs"
end

-- {["nnft.Mat"] = metatable, ...}: from the interpreter, else the debug library's registry.
local function types()
  local it = interp()
  if it and type(it.types) == "function" then
    local ok, t = pcall(it.types)
    if ok and type(t) == "table" then return t end
  end
  local out = {}
  local dbg = package.loaded.debug
  local ok, reg = pcall(function() return dbg.getregistry() end)
  if ok and type(reg) == "table" then
    for k, v in next, reg do
      if type(k) == "string" and k:sub(1, 5) == "nnft." and type(v) == "table" then out[k] = v end
    end
  end
  return out
end

-- The method table of a metatable: its __index when that is a table, else the metatable.
local function methods_of(mt)
  if type(mt) ~= "table" then return nil end
  local idx = rawget(mt, "__index")
  return type(idx) == "table" and idx or nil
end

-- ------------------------------------------------------------------ the documentation index

-- The api/*.md files: listed by the interpreter, else lfs, else guessed from module names.
local function api_files(dir)
  local list
  local it = interp()
  if it and type(it.listdir) == "function" then list = it.listdir(dir) end
  if not list then
    local ok, lfs = pcall(require, "lfs")
    if ok and type(lfs) == "table" and lfs.dir then
      local okd = pcall(function()
        list = {}
        for f in lfs.dir(dir) do list[#list + 1] = f end
      end)
      if not okd then list = nil end
    end
  end
  if not list then
    list = {}
    local seen = {}
    local function add(name)
      name = name:lower()
      if not seen[name] then seen[name] = true; list[#list + 1] = name .. ".md" end
    end
    local n = nnft_table()
    if n then for k in next, n do if type(k) == "string" then add(k) end end end
    for _, k in ipairs(LAZY) do add(k) end
    for tname in next, types() do add(tname:sub(6)) end
  end
  local files = {}
  for _, f in ipairs(list) do
    if f:match("^[^.].*%.md$") then files[#files + 1] = dir .. "/" .. f end
  end
  table.sort(files)
  return files
end

-- Parse one markdown file: sections start at level-3 headings ("### name(args)") and end at the
-- next heading of level <= 3 (outside code fences); the text before the first one is the intro.
local function parse_file(path, index)
  local f = io.open(path, "r")
  if not f then return end
  local text = f:read("a")
  f:close()
  local mod = path:match("([^/]+)%.md$")
  local file = { path = path, intro = {}, names = {} }
  index.files[mod] = file
  local cur, started, fence = nil, false, false
  local function close()
    if cur then
      while #cur.lines > 1 and cur.lines[#cur.lines]:match("^%s*$") do cur.lines[#cur.lines] = nil end
      local list = index.sections[cur.name] or {}
      list[#list + 1] = table.concat(cur.lines, "\n")
      index.sections[cur.name] = list
    end
    cur = nil
  end
  for line in (text:gsub("\r", "") .. "\n"):gmatch("(.-)\n") do
    local hashes = not fence and line:match("^(#+)%s")
    if hashes and #hashes <= 3 then
      close()
      started = started or #hashes == 3
      if not started then file.intro[#file.intro + 1] = line end
      if #hashes == 3 then
        local heading = line:match("^###%s+(.-)%s*$")
        local name = heading:gsub("`", ""):match("^[%a_][%w_%.:]*")
        if name then
          cur = { name = name, lines = { line } }
          file.names[#file.names + 1] = heading:gsub("`", "")
        end
      end
    elseif cur then
      cur.lines[#cur.lines + 1] = line
    elseif not started then
      file.intro[#file.intro + 1] = line
    end
    if line:match("^%s*```") or line:match("^%s*~~~") then fence = not fence end
  end
  close()
end

local cache = { dir = nil, index = nil }

-- The index of docdir/api/*.md: sections[name] = { text, ... }, files[module] = { intro, names }.
local function index()
  local dir = M.docdir()
  if cache.dir ~= dir then
    local idx = { sections = {}, files = {}, dir = dir }
    for _, path in ipairs(api_files(dir .. "/api")) do parse_file(path, idx) end
    cache.dir, cache.index = dir, idx
  end
  return cache.index
end

-- ------------------------------------------------------------------ names of values

-- The qualified name of v inside the nnft table ("nnft.mat.zeros"), breadth first so the
-- shortest name wins; nil if v is not reachable.
local function name_in_nnft(v)
  local n = nnft_table()
  if not n then return nil end
  if rawequal(v, n) then return "nnft" end
  if rawequal(v, M) then return "nnft.help" end
  local queue, seen, head = { { n, "nnft" } }, { [n] = true }, 1
  while queue[head] and head <= 200 do
    local t, prefix = queue[head][1], queue[head][2]
    head = head + 1
    for k, x in next, t do
      if is_ident(k) then
        local name = prefix .. "." .. k
        if rawequal(x, v) then return name end
        if type(x) == "table" and not seen[x] and select(2, name:gsub("%.", "")) < 4 then
          seen[x] = true
          queue[#queue + 1] = { x, name }
        end
      end
    end
  end
  return nil
end

-- "Mat:row" if v is a method of an nnft userdata type.
local function method_name(v)
  for tname, mt in next, types() do
    local methods = methods_of(mt)
    if methods then
      for k, x in next, methods do
        if rawequal(x, v) and type(k) == "string" then return tname:sub(6) .. ":" .. k end
      end
    end
  end
  return nil
end

-- "print" or "string.format" if v is part of Lua's standard library.
local function stdlib_name(v)
  for k, x in next, _G do
    if rawequal(x, v) and type(k) == "string" and type(x) == "function" then return k end
  end
  for _, lib in ipairs(STDLIB) do
    local t = rawget(_G, lib)
    if type(t) == "table" then
      for k, x in next, t do
        if rawequal(x, v) and type(k) == "string" then return lib .. "." .. k end
      end
    end
  end
  return nil
end

--- The qualified name help uses for x ("nnft.mat.zeros", "Mat:row", "Mat"), or nil.
function M.name_of(x)
  if type(x) == "function" or type(x) == "table" then
    local name = name_in_nnft(x) or (type(x) == "function" and method_name(x))
    if name then return name end
  end
  local mt = getmetatable(x)
  local tname = type(mt) == "table" and rawget(mt, "__name")
  if type(tname) == "string" and tname:sub(1, 5) == "nnft." then return tname:sub(6) end
  return nil
end

-- ------------------------------------------------------------------ the texts

-- Candidate spellings of a name as it may appear in a heading.
local function spellings(name)
  local out = { name }
  local short = name:match("^nnft%.(%u[%w_]*[:.][%w_]+)$") -- nnft.Mat:row -> Mat:row
  if short then out[#out + 1] = (short:gsub("%.", ":")) end
  local t, m = name:match("^(%u[%w_]*)%.([%w_]+)$")         -- Mat.row -> Mat:row
  if t then out[#out + 1] = t .. ":" .. m end
  if not name:match("^nnft") and not name:match("^%u") then out[#out + 1] = "nnft." .. name end
  return out
end

local function section_text(idx, name)
  for _, s in ipairs(spellings(name)) do
    local list = idx.sections[s]
    if list then return table.concat(list, "\n\n"), s end
  end
  return nil
end

-- "  prefix a, prefix b, ..." wrapped at 78 columns.
local function wrap(prefix, words)
  local lines, line = {}, " "
  for i, w in ipairs(words) do
    local item = " " .. prefix .. w .. (i < #words and "," or "")
    if #line + #item > 78 and line ~= " " then lines[#lines + 1] = line; line = " " end
    line = line .. item
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

-- A module: its file's introduction, its own section (a callable module) and its functions.
local function module_text(idx, name)
  local mod = name:match("^nnft%.([%w_]+)$") or name:match("^([%l_][%w_]*)$")
  local file = mod and idx.files[mod]
  local own = section_text(idx, "nnft." .. (mod or ""))
  if not file and not own then
    local n = nnft_table()
    local t = mod and n and get(n, mod)
    if type(t) ~= "table" then return nil end
    local fields = {}
    for k in next, t do if is_ident(k) then fields[#fields + 1] = k end end
    table.sort(fields)
    return ("nnft.%s: no %s/api/%s.md yet. Fields:\n%s"):format(mod, idx.dir, mod, wrap("", fields))
  end
  local parts = {}
  if file then
    local lines = { table.unpack(file.intro) }
    while #lines > 0 and (lines[#lines]:match("^%s*$") or lines[#lines]:match("^#")) do
      lines[#lines] = nil
    end
    local intro = table.concat(lines, "\n"):gsub("^%s+", "")
    if intro ~= "" then parts[#parts + 1] = intro end
  end
  if own then parts[#parts + 1] = own end
  if file and #file.names > 0 then
    parts[#parts + 1] = "Functions (help(\"name\") for one):\n  " .. table.concat(file.names, "\n  ")
  end
  return table.concat(parts, "\n\n")
end

-- A userdata type ("Mat"): its section if any, then its methods, documented ones with signatures.
local function type_text(idx, short)
  local mt = types()["nnft." .. short]
  local own = section_text(idx, short)
  if not mt and not own then return nil end
  local parts = { own or ("nnft." .. short .. " (userdata)") }
  local documented, names = {}, {}
  for _, file in next, idx.files do
    for _, h in ipairs(file.names) do
      local m = h:match("^" .. short .. ":([%w_]+)")
      if m then documented[m] = h end
    end
  end
  local others = {}
  for k in next, methods_of(mt) or {} do
    if type(k) == "string" and not documented[k] then others[#others + 1] = k end
  end
  for _, h in next, documented do names[#names + 1] = h end
  table.sort(names)
  table.sort(others)
  if #names > 0 then parts[#parts + 1] = "Methods:\n  " .. table.concat(names, "\n  ") end
  if #others > 0 then
    parts[#parts + 1] = (#names > 0 and "Undocumented methods:\n" or "Methods:\n")
      .. wrap(short .. ":", others)
  end
  return table.concat(parts, "\n\n")
end

-- The modules (nnft's table-valued fields, the lazy ones, and api/*.md files) and types.
local function modules_and_types(idx)
  local mods, seen = {}, {}
  local function add(m) if not seen[m] then seen[m] = true; mods[#mods + 1] = "nnft." .. m end end
  local n = nnft_table()
  if n then
    for k, v in next, n do
      if is_ident(k) and k:sub(1, 1) ~= "_" and type(v) == "table" then add(k) end
    end
  end
  for _, k in ipairs(LAZY) do if package.searchpath("nnft." .. k, package.path) then add(k) end end
  for k in next, idx.files do if is_ident(k) and (not n or n[k] ~= nil) then add(k) end end
  table.sort(mods)
  local tys = {}
  for tname in next, types() do tys[#tys + 1] = tname:sub(6) end
  table.sort(tys)
  return mods, tys
end

local function overview(idx)
  local mods, tys = modules_and_types(idx)
  return table.concat({
    "nnft: a laboratory for neural-network field theory. Documentation: " .. idx.dir,
    "",
    "  help(nnft.mat.zeros)   a function's documentation",
    "  help(m.row)            a method (m a Mat), or by name: help(\"Mat:row\")",
    "  help(nnft.mat)         a module: its overview and its functions",
    "  help(\"nnft.gp.fit\")    any name as a string",
    "",
    "Modules: " .. (#mods > 0 and table.concat(mods, ", ") or "(none found)"),
    "Types:   " .. (#tys > 0 and table.concat(tys, ", ") or "(none loaded)"),
    "Tab completes names (nnft.ma<Tab>) and methods (m:<Tab>); Ctrl-C cancels a computation;",
    "Ctrl-D leaves. The user guide is " .. idx.dir .. "/guide.md.",
  }, "\n")
end

local function not_found(what)
  return nil, ("help: no documentation for %s (looked in %s/api/*.md); help() lists the modules")
    :format(what, M.docdir())
end

--- The documentation of x (a function, method, module, nnft object or a name as a string) as
-- text; nil and a message saying why when there is none. doc() with no argument: the overview.
function M.doc(...)
  local idx = index()
  if select("#", ...) == 0 then return overview(idx) end
  local x = ...
  if type(x) == "string" then
    local name = x:gsub("^%s+", ""):gsub("%s+$", ""):gsub("%(.*$", "")
    if name == "" or name == "nnft" then return overview(idx) end
    local text
    if name:match("^nnft%.[%w_]+$") then text = module_text(idx, name) end
    text = text or section_text(idx, name) or module_text(idx, name)
    if text then return text end
    local short = name:match("^nnft%.(%u[%w_]*)$") or name:match("^(%u[%w_]*)$")
    text = short and type_text(idx, short)
    if text then return text end
    return not_found("'" .. name .. "'")
  end
  if x == nil then return not_found("nil (a misspelt name? try help(\"nnft.mat.zeros\"))") end
  local name = M.name_of(x)
  if name == "nnft" then return overview(idx) end
  if name then
    local text = (type(x) == "table" and module_text(idx, name)) or section_text(idx, name)
      or (name:match("^%u[%w_]*$") and type_text(idx, name))
    if text then return text end
    return not_found(name)
  end
  if type(x) == "function" then
    local std = stdlib_name(x)
    if std then
      return nil, ("help: %s is part of Lua's standard library; see the Lua 5.4 manual: "
        .. "https://www.lua.org/manual/5.4/manual.html#pdf-%s"):format(std, std)
    end
    return nil, "help: this function is not part of nnft (help works for nnft's functions, "
      .. "methods and modules)"
  end
  return nil, ("help: expects an nnft function, method, module or object, or a name such as "
    .. "\"nnft.mat.zeros\" (got a %s value)"):format(type(x))
end

--- Print the documentation of x (see doc); help() prints the overview. Returns nothing, so the
-- REPL prints nothing more.
function M.help(...)
  local text, err = M.doc(...)
  io.stdout:write((text or err), "\n")
end

-- ------------------------------------------------------------------ completion

-- Keys a value offers after "." (fields) or ":" (methods), following __index tables.
local function keys_of(v, methods_only)
  local out = {}
  local function add_table(t, depth, seen)
    if type(t) ~= "table" or seen[t] or depth > 8 then return end
    seen[t] = true
    for k, x in next, t do
      if is_ident(k) and (not methods_only or type(x) == "function") then out[k] = true end
    end
    local mt = getmetatable(t)
    if type(mt) == "table" then add_table(rawget(mt, "__index"), depth + 1, seen) end
  end
  local seen = {}
  if type(v) == "table" then add_table(v, 1, seen) end
  if type(v) ~= "table" then
    local mt = getmetatable(v)
    if type(mt) == "table" then add_table(rawget(mt, "__index"), 1, seen) end
  end
  -- nnft's lazily loaded modules are not in the table until first use
  if type(v) == "table" and rawequal(v, package.loaded.nnft) and not methods_only then
    for _, k in ipairs(LAZY) do
      if rawget(v, k) == nil and package.searchpath("nnft." .. k, package.path) then out[k] = true end
    end
  end
  return out
end

-- Names starting with "_" (private by convention) are offered only once "_" is typed.
local function visible(k, typed)
  return k:sub(1, 1) ~= "_" or typed:sub(1, 1) == "_"
end

--- Completion candidates for the word before the cursor: a global ("pri" -> "print"), a field
-- path ("nnft.ma" -> "nnft.mat") or a method ("m:ro" -> "m:row", through the metatable's __index
-- table). Returns a sorted list of full replacements. env defaults to _G. Only field reads are
-- evaluated (an __index may load a module); nothing is called.
function M.complete(text, env)
  if type(text) ~= "string" then error("nnft.help.complete: text must be a string", 2) end
  env = env or _G
  local out = {}
  local prefix, sep, partial = text:match("^(.*)([%.:])([%w_]*)$")
  if not prefix then
    if text ~= "" and not is_ident(text) then return out end
    local cands = keys_of(env, false)
    for _, kw in ipairs(KEYWORDS) do cands[kw] = true end
    for k in next, cands do
      if k:sub(1, #text) == text and visible(k, text) then out[#out + 1] = k end
    end
    table.sort(out)
    return out
  end
  local v = env
  for part in (prefix .. "."):gmatch("(.-)%.") do
    if not is_ident(part) then return out end
    v = get(v, part)
    if v == nil then return out end
  end
  for k in next, keys_of(v, sep == ":") do
    if k:sub(1, #partial) == partial and visible(k, partial) then out[#out + 1] = prefix .. sep .. k end
  end
  table.sort(out)
  return out
end

setmetatable(M, {
  __call = function(_, ...) return M.help(...) end,
  __tostring = function() return "help: call help() for an overview, help(f) for f's documentation" end,
})

return M
