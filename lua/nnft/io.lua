--- nnft.io: results on disk. CSV/TSV with a `#` metadata header, NPY, JSON, SHA-256, and runs:
-- an out= directory whose outputs are listed with their checksums in a manifest.json.
-- Every write is atomic (temporary file beside the target, checked flush/close, rename).
-- Reference: docs/api/io.md.
local core = require "nnft.core"
local C = core._io

local M = {}

-- ------------------------------------------------------------------ helpers

local function check_options(opts, fname, allowed, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("%s: options must be a table, got a %s"):format(fname, type(opts)), level + 1)
  end
  local set = {}
  for _, k in ipairs(allowed) do set[k] = true end
  for k in pairs(opts) do
    if not set[k] then
      error(("%s: unknown option '%s' (allowed: %s)"):format(fname, tostring(k),
        table.concat(allowed, ", ")), level + 1)
    end
  end
  return opts
end
M._check_options = check_options

local function check_path(path, fname, level)
  if type(path) ~= "string" or path == "" then
    error(("%s: path must be a non-empty string, got %s"):format(fname,
      type(path) == "string" and "''" or ("a " .. type(path))), level + 1)
  end
end

local function is_mat(v) return core.mat.ismat(v) end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function read_all(path, fname, level)
  local f, err = io.open(path, "rb")
  if not f then error(("%s: cannot read %s"):format(fname, err), level + 1) end
  local s, rerr = f:read("a")
  f:close()
  if not s then error(("%s: cannot read '%s': %s"):format(fname, path, rerr), level + 1) end
  return s
end

-- Paths are compared as strings after removing "./" and doubled slashes.
local function normalize(p)
  p = p:gsub("/+", "/")
  while p:sub(1, 2) == "./" and #p > 2 do p = p:sub(3) end
  p = p:gsub("/%./", "/")
  if #p > 1 then p = p:gsub("/$", "") end
  return p
end

-- ------------------------------------------------------------------ runs (recording)

-- Unfinished runs, shared through the registry so that a second copy of this module (a test
-- harness reloading modules) sees the same runs.
local state = C.state
state.runs = state.runs or setmetatable({}, { __mode = "k" })
local active = state.runs

--- Record path as an output of whichever unfinished run's out= directory contains it.
-- Writers in nnft.io and nnft.plot call this; recipes writing files by other means use
-- run:path() (which records) or run:record(path).
function M._record(path)
  local p = normalize(path)
  for run in pairs(active) do
    local prefix = run._norm_out .. "/"
    if p:sub(1, #prefix) == prefix then run:_add(p:sub(#prefix + 1)) end
  end
end

-- ------------------------------------------------------------------ plain files

--- nnft.io.write_text(path, text): write a string atomically.
function M.write_text(path, text)
  check_path(path, "nnft.io.write_text", 2)
  if type(text) ~= "string" then
    error("nnft.io.write_text: text must be a string, got a " .. type(text), 2)
  end
  C.write_file(path, text, "nnft.io.write_text")
  M._record(path)
end

--- nnft.io.sha256(path): SHA-256 of a file's bytes as 64 hex digits.
function M.sha256(path)
  check_path(path, "nnft.io.sha256", 2)
  return C.sha256_file(path, "nnft.io.sha256")
end

--- nnft.io.sha256_string(s): SHA-256 of a string.
function M.sha256_string(s)
  if type(s) ~= "string" then error("nnft.io.sha256_string: expected a string", 2) end
  return C.sha256(s)
end

--- nnft.io.mkdir(path): create a directory and its parents (mkdir -p).
function M.mkdir(path)
  check_path(path, "nnft.io.mkdir", 2)
  C.mkdir_p(path, "nnft.io.mkdir")
end

-- ------------------------------------------------------------------ CSV / TSV

local function default_sep(path)
  return (path:lower():match("%.tsv$") or path:lower():match("%.tab$")) and "\t" or ","
end

local function quote_field(s, sep)
  if s:find(sep, 1, true) or s:find('"', 1, true) or s:match("^%s") or s:match("%s$")
      or s == "" then
    return '"' .. s:gsub('"', '""') .. '"'
  end
  return s
end

-- A column as a Lua list: a table of numbers/strings/booleans, or a vector Mat.
local function column_values(col, name, fname, level)
  if is_mat(col) then
    local r, c = col:rows(), col:cols()
    if r ~= 1 and c ~= 1 and r * c ~= 0 then
      error(("%s: column '%s' is a %d x %d Mat; columns must be vectors"):format(fname, name, r, c),
        level + 1)
    end
    return col:totable(true)
  end
  if type(col) ~= "table" then
    error(("%s: column '%s' is a %s; expected a table or a vector Mat"):format(fname, name,
      type(col)), level + 1)
  end
  return col
end

local function format_value(v, name, row, sep, fname, level)
  local t = type(v)
  if t == "number" then return C.fmt(v) end
  if t == "string" then
    if v:find("[\r\n]") then
      error(("%s: column '%s' row %d: strings in CSV cannot contain newlines"):format(fname, name,
        row), level + 1)
    end
    return quote_field(v, sep)
  end
  if t == "boolean" then return tostring(v) end
  error(("%s: column '%s' row %d is a %s; expected a number or string"):format(fname, name, row,
    t), level + 1)
end

local function meta_lines(meta, fname, level)
  local out = {}
  if meta == nil then return out end
  if type(meta) ~= "table" then
    error(("%s: meta must be a table of key = value, got a %s"):format(fname, type(meta)),
      level + 1)
  end
  for _, k in ipairs(sorted_keys(meta)) do
    local v = meta[k]
    local tv = type(v)
    if tv == "number" then
      v = C.fmt(v)
    elseif tv == "boolean" then
      v = tostring(v)
    elseif tv == "table" then -- a list, written comma-separated
      local parts = {}
      for i = 1, #v do parts[i] = type(v[i]) == "number" and C.fmt(v[i]) or tostring(v[i]) end
      v = table.concat(parts, ",")
    elseif tv ~= "string" then
      error(("%s: meta '%s' is a %s; expected a string, number or boolean"):format(fname,
        tostring(k), tv), level + 1)
    end
    local ks = tostring(k)
    if ks:find("[\r\n:]") or v:find("[\r\n]") then
      error(("%s: meta '%s' contains a newline (or its key a colon)"):format(fname, ks), level + 1)
    end
    out[#out + 1] = "# " .. ks .. ": " .. v .. "\n"
  end
  return out
end

--- nnft.io.write_csv(path, data [, opts]): see docs/api/io.md.
function M.write_csv(path, data, opts)
  local fname = "nnft.io.write_csv"
  check_path(path, fname, 2)
  opts = check_options(opts, fname, { "columns", "meta", "sep" }, 2)
  local sep = opts.sep or default_sep(path)
  if type(sep) ~= "string" or #sep ~= 1 or sep:match("[\"\r\n#]") then
    error(fname .. ": sep must be one character (e.g. ',' or '\\t')", 2)
  end
  local names = opts.columns
  if names ~= nil and type(names) ~= "table" then
    error(fname .. ": columns must be a list of names", 2)
  end
  local parts = meta_lines(opts.meta, fname, 2)

  local function header(list)
    local h = {}
    for i, n in ipairs(list) do
      if type(n) ~= "string" and type(n) ~= "number" then
        error(("%s: column name %d is a %s"):format(fname, i, type(n)), 3)
      end
      n = tostring(n)
      if n:find("[\r\n]") or n:sub(1, 1) == "#" then
        error(("%s: column name '%s' must not contain newlines or start with '#'"):format(fname, n), 3)
      end
      h[i] = quote_field(n, sep)
    end
    return table.concat(h, sep) .. "\n"
  end

  if is_mat(data) then
    local ncol = data:cols()
    if names then
      if #names ~= ncol then
        error(("%s: %d column names for a Mat with %d columns"):format(fname, #names, ncol), 2)
      end
    else
      names = {}
      for j = 1, ncol do names[j] = "c" .. j end
    end
    parts[#parts + 1] = header(names)
    parts[#parts + 1] = C.mat_csv(data, sep)
  elseif type(data) == "table" then
    local cols = {}
    if #data > 0 then -- a list of columns
      if names and #names ~= #data then
        error(("%s: %d column names for %d columns"):format(fname, #names, #data), 2)
      end
      if not names then
        names = {}
        for j = 1, #data do names[j] = "c" .. j end
      end
      for j = 1, #data do cols[j] = column_values(data[j], tostring(names[j]), fname, 2) end
    else -- name -> column
      if not names then
        names = {}
        for _, k in ipairs(sorted_keys(data)) do
          if type(k) ~= "string" then
            error(("%s: data has a non-string key %s"):format(fname, tostring(k)), 2)
          end
          names[#names + 1] = k
        end
      end
      for j, n in ipairs(names) do
        if data[n] == nil then error(("%s: no column named '%s' in data"):format(fname, n), 2) end
        cols[j] = column_values(data[n], n, fname, 2)
      end
    end
    if #cols == 0 then error(fname .. ": data has no columns", 2) end
    local nrow = #cols[1]
    for j = 2, #cols do
      if #cols[j] ~= nrow then
        error(("%s: column '%s' has %d entries, column '%s' has %d"):format(fname,
          tostring(names[j]), #cols[j], tostring(names[1]), nrow), 2)
      end
    end
    parts[#parts + 1] = header(names)
    local row = {}
    for i = 1, nrow do
      for j = 1, #cols do row[j] = format_value(cols[j][i], names[j], i, sep, fname, 2) end
      parts[#parts + 1] = table.concat(row, sep, 1, #cols) .. "\n"
    end
  else
    error(("%s: data must be a Mat or a table of columns, got a %s"):format(fname, type(data)), 2)
  end
  C.write_file(path, table.concat(parts), fname)
  M._record(path)
end

-- Split one CSV line into fields (RFC 4180 quoting within the line).
local function split_line(line, sep, lineno, path)
  local fields, i, n = {}, 1, #line
  while true do
    if line:sub(i, i) == '"' then
      local buf, j = {}, i + 1
      while true do
        local q = line:find('"', j, true)
        if not q then
          error(("nnft.io.read_csv: '%s' line %d: unterminated quoted field"):format(path, lineno), 0)
        end
        buf[#buf + 1] = line:sub(j, q - 1)
        if line:sub(q + 1, q + 1) == '"' then
          buf[#buf + 1] = '"'
          j = q + 2
        else
          i = q + 1
          break
        end
      end
      fields[#fields + 1] = table.concat(buf)
      if i > n then break end
      if line:sub(i, i) ~= sep then
        error(("nnft.io.read_csv: '%s' line %d: text after a closing quote"):format(path, lineno), 0)
      end
      i = i + 1
    else
      local s = line:find(sep, i, true)
      if not s then
        fields[#fields + 1] = line:sub(i)
        break
      end
      fields[#fields + 1] = line:sub(i, s - 1)
      i = s + 1
    end
  end
  return fields
end

local special = { nan = 0 / 0, ["-nan"] = 0 / 0, inf = math.huge, ["+inf"] = math.huge,
                  ["-inf"] = -math.huge, infinity = math.huge, ["-infinity"] = -math.huge }

local function to_number(s)
  local v = tonumber(s)
  if v ~= nil then return v end
  return special[s:lower()]
end

local function meta_value(s)
  local v = tonumber(s)
  if v ~= nil then return v end
  if s == "true" then return true elseif s == "false" then return false end
  return s
end

--- nnft.io.read_csv(path [, opts]) -> columns, meta, names: see docs/api/io.md.
function M.read_csv(path, opts)
  local fname = "nnft.io.read_csv"
  check_path(path, fname, 2)
  opts = check_options(opts, fname, { "sep", "mat" }, 2)
  local text = read_all(path, fname, 2)
  local sep = opts.sep
  local meta, names, rows = {}, nil, {}
  local lineno = 0
  local ok, err = pcall(function()
    for line in (text:gsub("\r\n", "\n") .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("(.-)\n") do
      lineno = lineno + 1
      if line:sub(1, 1) == "#" then
        if not names then
          local k, v = line:match("^#%s*([^:]-)%s*:%s?(.*)$")
          if k and k ~= "" then meta[k] = meta_value(v) end
        end
      elseif line:match("^%s*$") then -- blank line: skipped
      else
        if not sep then
          sep = (line:find("\t", 1, true) and not line:find(",", 1, true)) and "\t"
            or default_sep(path)
        end
        local f = split_line(line, sep, lineno, path)
        if not names then
          names = f
        else
          if #f ~= #names then
            error(("nnft.io.read_csv: '%s' line %d has %d fields, the header has %d"):format(path,
              lineno, #f, #names), 0)
          end
          rows[#rows + 1] = f
        end
      end
    end
  end)
  if not ok then error(err, 2) end
  if not names then error(("%s: '%s' has no header line"):format(fname, path), 2) end

  local cols = {}
  for j, n in ipairs(names) do
    local numeric = true
    for i = 1, #rows do
      local s = rows[i][j]
      if s ~= "" and to_number(s) == nil then numeric = false break end
    end
    local col = {}
    for i = 1, #rows do
      local s = rows[i][j]
      if numeric then
        col[i] = s == "" and 0 / 0 or to_number(s)
      else
        col[i] = s
      end
    end
    cols[j] = col
    if opts.mat and not numeric then
      error(("%s: '%s' column '%s' is not numeric; cannot return a Mat"):format(fname, path, n), 2)
    end
  end
  if opts.mat then
    local m = core.mat.zeros(#rows, #names)
    for j = 1, #names do
      for i = 1, #rows do m:set(i, j, cols[j][i]) end
    end
    return m, meta, names
  end
  local out = {}
  for j, n in ipairs(names) do out[n] = cols[j] end
  return out, meta, names
end

-- ------------------------------------------------------------------ NPY

--- nnft.io.write_npy(path, m): float64, Fortran order, atomic.
function M.write_npy(path, m)
  check_path(path, "nnft.io.write_npy", 2)
  if not is_mat(m) and type(m) ~= "table" and type(m) ~= "number" then
    error("nnft.io.write_npy: expected a Mat (or a table of numbers), got a " .. type(m), 2)
  end
  C.write_npy(path, m, "nnft.io.write_npy")
  M._record(path)
end

--- nnft.io.read_npy(path) -> Mat
function M.read_npy(path)
  check_path(path, "nnft.io.read_npy", 2)
  return C.read_npy(path, "nnft.io.read_npy")
end

-- ------------------------------------------------------------------ JSON

local cjson_ok, cjson = pcall(require, "cjson")
local json_decoder = cjson_ok and cjson.new and cjson.new() or cjson

--- JSON null (lua-cjson's): read_json returns it for null; write_json writes it as null.
M.null = cjson_ok and cjson.null or setmetatable({}, { __tostring = function() return "null" end })

local array_mt = { __name = "nnft.io.json_array" }
--- Mark a table as a JSON array (so that an empty one is written as [] rather than {}).
function M.json_array(t)
  return setmetatable(t or {}, array_mt)
end

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

-- Encode v (sorted keys, indent spaces per level; 0 = compact). where: a path for errors.
local function encode(v, indent, depth, where, buf)
  local t = type(v)
  if v == M.null then
    buf[#buf + 1] = "null"
  elseif t == "boolean" then
    buf[#buf + 1] = tostring(v)
  elseif t == "number" then
    if math.type(v) == "float" and (v ~= v or v == math.huge or v == -math.huge) then
      error(("value at %s is %s; JSON has no NaN or Inf"):format(where, tostring(v)), 0)
    end
    buf[#buf + 1] = C.fmt(v)
  elseif t == "string" then
    buf[#buf + 1] = json_string(v)
  elseif is_mat(v) then
    encode(v:cols() == 1 and v:totable(true) or v:totable(), indent, depth, where, buf)
  elseif t == "table" then
    if depth > 100 then error(("value at %s is nested too deeply (a cycle?)"):format(where), 0) end
    local n, count, all_int, any_str = #v, 0, true, false
    for k in pairs(v) do
      count = count + 1
      if math.type(k) ~= "integer" then all_int = false end
      if type(k) == "string" then any_str = true end
    end
    local nl = indent > 0 and ("\n" .. (" "):rep(indent * (depth + 1))) or ""
    local close = indent > 0 and ("\n" .. (" "):rep(indent * depth)) or ""
    local colon = indent > 0 and ": " or ":"
    if count == 0 then
      buf[#buf + 1] = getmetatable(v) == array_mt and "[]" or "{}"
    elseif all_int and count == n then
      buf[#buf + 1] = "["
      for i = 1, n do
        buf[#buf + 1] = (i > 1 and "," or "") .. nl
        encode(v[i], indent, depth + 1, where .. "[" .. i .. "]", buf)
      end
      buf[#buf + 1] = close .. "]"
    else
      if all_int or not any_str then
        error(("table at %s is neither a list nor has string keys"):format(where), 0)
      end
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then
          error(("table at %s mixes string keys with a %s key"):format(where, type(k)), 0)
        end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      buf[#buf + 1] = "{"
      for i, k in ipairs(keys) do
        buf[#buf + 1] = (i > 1 and "," or "") .. nl .. json_string(k) .. colon
        encode(v[k], indent, depth + 1, where .. "." .. k, buf)
      end
      buf[#buf + 1] = close .. "}"
    end
  else
    error(("value at %s is a %s; JSON holds numbers, strings, booleans, tables"):format(where, t), 0)
  end
end

--- nnft.io.json_encode(value [, indent]) -> string (sorted keys, numbers exact).
function M.json_encode(value, indent)
  local buf = {}
  local ok, err = pcall(encode, value, indent or 0, 0, "$", buf)
  if not ok then error("nnft.io.json_encode: " .. err, 2) end
  return table.concat(buf)
end

--- nnft.io.write_json(path, value [, opts]): see docs/api/io.md.
function M.write_json(path, value, opts)
  local fname = "nnft.io.write_json"
  check_path(path, fname, 2)
  opts = check_options(opts, fname, { "indent" }, 2)
  local indent = opts.indent
  if indent == nil then indent = 2 end
  if indent == false then indent = 0 end
  if math.type(indent) ~= "integer" or indent < 0 or indent > 16 then
    error(fname .. ": indent must be an integer 0..16 (or false)", 2)
  end
  local buf = {}
  local ok, err = pcall(encode, value, indent, 0, "$", buf)
  if not ok then error(("%s: '%s': %s"):format(fname, path, err), 2) end
  buf[#buf + 1] = "\n"
  C.write_file(path, table.concat(buf), fname)
  M._record(path)
end

-- Integral floats (|x| < 2^53) become integers: JSON does not tell 3 from 3.0.
local function integerize(v)
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = integerize(x) end
    return v
  end
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    return math.tointeger(v)
  end
  return v
end

--- nnft.io.read_json(path) -> value
function M.read_json(path)
  local fname = "nnft.io.read_json"
  check_path(path, fname, 2)
  if not cjson_ok then error(fname .. ": lua-cjson is not installed (Debian: lua-cjson)", 2) end
  local text = read_all(path, fname, 2)
  local ok, v = pcall(json_decoder.decode, text)
  if not ok then error(("%s: '%s' is not valid JSON: %s"):format(fname, path, tostring(v)), 2) end
  return integerize(v)
end

--- nnft.io.json_decode(text) -> value
function M.json_decode(text)
  if type(text) ~= "string" then error("nnft.io.json_decode: expected a string", 2) end
  if not cjson_ok then error("nnft.io.json_decode: lua-cjson is not installed", 2) end
  local ok, v = pcall(json_decoder.decode, text)
  if not ok then error("nnft.io.json_decode: " .. tostring(v), 2) end
  return integerize(v)
end

-- ------------------------------------------------------------------ runs and manifests

local Run = {}
Run.__index = Run
Run.__name = "nnft.io.Run"

function Run.__tostring(r)
  local n = 0
  for _ in pairs(r._outputs) do n = n + 1 end
  return ("nnft.io.Run(%s, out=%s, %d outputs%s)"):format(r.name, r.out, n,
    r._finished and ", finished" or "")
end

function Run:_add(rel)
  if rel ~= "manifest.json" and not self._outputs[rel] then
    self._outputs[rel] = true
    self._order[#self._order + 1] = rel
  end
end

--- run:path(name) -> out .. "/" .. name, recorded as an output (parent directories created).
function Run:path(name)
  if getmetatable(self) ~= Run then error("nnft.io.Run:path: call as run:path(name)", 2) end
  if type(name) ~= "string" or name == "" then
    error("nnft.io.Run:path: name must be a non-empty string", 2)
  end
  if name:sub(1, 1) == "/" then
    error(("nnft.io.Run:path: '%s' is absolute; outputs live inside out=%s"):format(name, self.out), 2)
  end
  local rel = normalize(name)
  for part in rel:gmatch("[^/]+") do
    if part == ".." then
      error(("nnft.io.Run:path: '%s' leaves the out= directory"):format(name), 2)
    end
  end
  if rel == "manifest.json" then
    error("nnft.io.Run:path: manifest.json is written by run:finish()", 2)
  end
  if self._finished then error("nnft.io.Run:path: the run has finished", 2) end
  local dir = rel:match("^(.*)/[^/]*$")
  if dir then C.mkdir_p(self.out .. "/" .. dir, "nnft.io.Run:path") end
  self:_add(rel)
  return self.out .. "/" .. rel
end

--- run:record(path): record a file inside out= written by other means.
function Run:record(path)
  if type(path) ~= "string" then error("nnft.io.Run:record: expected a path", 2) end
  local p = normalize(path)
  local prefix = self._norm_out .. "/"
  if p:sub(1, #prefix) ~= prefix then
    error(("nnft.io.Run:record: '%s' is not inside out=%s"):format(path, self.out), 2)
  end
  self:_add(p:sub(#prefix + 1))
end

--- run:outputs() -> list of recorded output names (relative to out=), in order of recording.
function Run:outputs()
  local l = {}
  for i, v in ipairs(self._order) do l[i] = v end
  return l
end

-- A spec table made JSON-ready: nested objects become their own spec() (or their description).
local function plain_spec(v, depth)
  if type(v) == "table" and depth < 20 then
    local t = {}
    for k, x in pairs(v) do t[k] = plain_spec(x, depth + 1) end
    return t
  end
  if type(v) == "userdata" or type(v) == "table" then
    local ok, sp = pcall(function() return v:spec() end)
    if ok and type(sp) == "table" and depth < 20 then return plain_spec(sp, depth + 1) end
    return tostring(v)
  end
  if type(v) == "function" then return tostring(v) end
  return v
end

--- run:record_spec(obj [, label]) -> run. Store obj:spec() (an architecture, a kernel, ...) in the
-- manifest's `specs` list, once per distinct object description, so that a manifest says which
-- networks and kernels produced its outputs.
function Run:record_spec(obj, label)
  if getmetatable(self) ~= Run then error("nnft.io.Run:record_spec: call as run:record_spec(obj)", 2) end
  local ok, spec = pcall(function() return obj:spec() end)
  if not ok or type(spec) ~= "table" then
    error("nnft.io.Run:record_spec: expected an object with a spec() method (an nnft.Arch, nnft.Kernel, ...)", 2)
  end
  if label ~= nil and type(label) ~= "string" then
    error("nnft.io.Run:record_spec: label must be a string", 2)
  end
  local key = (label or "") .. "\0" .. tostring(obj)
  self._specs = self._specs or { list = M.json_array(), seen = {} }
  if not self._specs.seen[key] then
    self._specs.seen[key] = true
    self._specs.list[#self._specs.list + 1] = { label = label or M.null, text = tostring(obj),
                                                spec = plain_spec(spec, 0) }
  end
  return self
end

local function iso_utc(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

local function abs_path(p)
  if p == nil then return nil end
  local r = C.realpath(p)
  return r or p
end

--- run:finish() -> manifest table, manifest path. Writes out/manifest.json atomically.
function Run:finish()
  if getmetatable(self) ~= Run then error("nnft.io.Run:finish: call as run:finish()", 2) end
  if self._finished then error("nnft.io.Run:finish: the run has already finished", 2) end
  local outputs = M.json_array()
  for _, rel in ipairs(self._order) do
    local full = self.out .. "/" .. rel
    local kind, size = C.stat(full)
    if kind == "file" then
      outputs[#outputs + 1] = { file = rel, sha256 = C.sha256_file(full, "nnft.io.Run:finish"),
                                bytes = size }
    end
  end
  local info = core.sys.info()
  local manifest = {
    format = "nnft-manifest/1",
    name = self.name,
    nnft = { version = info.version, git = info.git },
    lua = info.lua, blas = info.blas, gsl = info.gsl,
    threads = info.threads, blas_threads = info.blas_threads,
    recipe = self.recipe or M.null,
    interpreter = self.interpreter or M.null,
    cwd = self.cwd,
    argv = M.json_array(self.argv),
    args = self.args or M.null,
    seed = self.seed == nil and M.null or self.seed,
    meta = self.meta,
    specs = self._specs and self._specs.list or M.json_array(),
    start = self.start,
    wall_seconds = C.clock() - self._t0,
    host = C.hostname(),
    outputs = outputs,
  }
  local path = self.out .. "/manifest.json"
  M.write_json(path, manifest)
  self._finished = true
  active[self] = nil
  return manifest, path
end

-- `local run <close> = nnft.io.run{...}`: finishes on normal scope exit, not after an error.
function Run:__close(err)
  if err == nil and not self._finished then self:finish() end
  active[self] = nil
end

--- nnft.io.run{out=, args=, seed=, name=, meta=} -> Run: see docs/api/io.md.
function M.run(opts)
  local fname = "nnft.io.run"
  if type(opts) ~= "table" then error(fname .. ": expected a table {out = dir, ...}", 2) end
  check_options(opts, fname, { "out", "args", "seed", "name", "meta" }, 2)
  local out = opts.out
  if type(out) ~= "string" or out == "" then
    error(fname .. ": out= (the output directory) must be a non-empty string", 2)
  end
  if opts.args ~= nil and type(opts.args) ~= "table" then
    error(fname .. ": args= must be the table nnft.args returned", 2)
  end
  local st = type(opts.seed)
  if opts.seed ~= nil and st ~= "number" and st ~= "table" then
    error(fname .. ": seed= must be a number or a table of numbers", 2)
  end
  if opts.name ~= nil and type(opts.name) ~= "string" then error(fname .. ": name= must be a string", 2) end
  if opts.meta ~= nil and type(opts.meta) ~= "table" then error(fname .. ": meta= must be a table", 2) end
  if C.stat(out) ~= "directory" then C.mkdir_p(out, fname) end

  local ok_args, args_mod = pcall(require, "nnft.args")
  local last_args, last_argv
  if ok_args then last_args, last_argv = args_mod.last() end
  local argv = last_argv
  if not argv then
    argv = {}
    local a = rawget(_G, "arg")
    if type(a) == "table" then for i = 1, #a do argv[i] = a[i] end end
  end
  local a = rawget(_G, "arg")
  local recipe = type(a) == "table" and type(a[0]) == "string" and abs_path(a[0]) or nil
  local interp = type(a) == "table" and type(a[-1]) == "string" and a[-1] or nil
  if interp and interp:find("/", 1, true) then interp = abs_path(interp) end
  local args = opts.args or last_args
  local seed = opts.seed
  if seed == nil and args and type(args.seed) == "number" then seed = args.seed end
  local name = opts.name or (recipe and recipe:match("([^/]+)$"):gsub("%.lua$", "")) or "run"

  local norm = normalize(out)
  local self = setmetatable({
    out = norm, name = name, args = args, argv = argv, seed = seed, recipe = recipe,
    interpreter = interp, cwd = C.getcwd(), meta = opts.meta or {},
    start = iso_utc(), _t0 = C.clock(), _norm_out = norm, _outputs = {}, _order = {},
  }, Run)
  active[self] = true
  return self
end

M.Run = Run

return M
