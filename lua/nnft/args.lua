--- nnft.args: a recipe's `key=value` command-line arguments, parsed against a table of defaults.
--
--   local args = nnft.args{ width = 50, seed = 1, lr = 0.1, act = "relu", widths = {2, 3, 5},
--                           verbose = false, out = "results/" }
--
-- The type of each default decides how its value is parsed (docs/api/args.md). `help` or
-- `--help` prints the defaults and ends the recipe with exit status 0.
local C = require("nnft.core")._io

local M = {}

-- The most recent parse, for manifests (nnft.io.run); kept in the registry-held state shared
-- with nnft.io, so that it survives this module being loaded twice.
local state = C.state

local function copy_list(t)
  local c = {}
  for i = 1, #t do c[i] = t[i] end
  return c
end

-- Kind of a default: "integer", "number", "boolean", "string", or "list" plus the element kind
-- ("integer", "number", "string", or nil for an empty default: inferred from the value).
local function kind_of(key, v)
  local t = type(v)
  if t == "number" then return math.type(v) == "integer" and "integer" or "number" end
  if t == "boolean" or t == "string" then return t end
  if t == "table" then
    local n, elem = 0, nil
    for k in pairs(v) do
      n = n + 1
      if math.type(k) ~= "integer" or k < 1 or k > #v then
        return nil, ("default of '%s' must be a list (a sequence of numbers or strings)"):format(key)
      end
    end
    for i = 1, #v do
      local e = v[i]
      local ek = type(e) == "number" and (math.type(e) == "integer" and "integer" or "number")
        or type(e) == "string" and "string" or nil
      if not ek then
        return nil, ("default of '%s' has a %s at position %d; lists hold numbers or strings")
          :format(key, type(e), i)
      end
      if elem == nil or (elem == "integer" and ek == "number") then
        elem = ek
      elseif not (elem == ek or (elem == "number" and ek == "integer")) then
        return nil, ("default of '%s' mixes numbers and strings"):format(key)
      end
    end
    return "list", elem
  end
  return nil, ("default of '%s' is a %s; defaults must be numbers, booleans, strings or lists")
    :format(key, t)
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function show(v)
  if type(v) == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = tostring(v[i]) end
    return table.concat(parts, ",")
  end
  return tostring(v)
end

local function parse_number(key, s, want_integer)
  local n = tonumber(s)
  if n == nil or n ~= n or n == math.huge or n == -math.huge then
    return nil, ("'%s=%s': expected a finite number"):format(key, s)
  end
  if want_integer then
    local i = math.tointeger(n)
    if not i then return nil, ("'%s=%s': expected an integer"):format(key, s) end
    return i
  end
  return n + 0.0
end

local booleans = { ["true"] = true, yes = true, ["1"] = true,
                   ["false"] = false, no = false, ["0"] = false }

-- Parse the text s for key whose default is def.
local function convert(key, s, def)
  local kind, elem = kind_of(key, def)
  if kind == "integer" or kind == "number" then
    return parse_number(key, s, kind == "integer")
  elseif kind == "boolean" then
    local b = booleans[s:lower()]
    if b == nil then
      return nil, ("'%s=%s': expected a boolean (true/false, yes/no, 1/0)"):format(key, s)
    end
    return b
  elseif kind == "string" then
    return s
  end
  -- a list
  local list = {}
  if s == "" then return list end
  local items = {}
  for item in (s .. ","):gmatch("(.-),") do items[#items + 1] = item end
  if elem == nil then -- empty default: numbers if every item is one, else strings
    elem = "number"
    for _, item in ipairs(items) do
      if tonumber(item) == nil then elem = "string" break end
    end
  end
  for i, item in ipairs(items) do
    if elem == "string" then
      list[i] = item
    else
      local v, err = parse_number(key, item, elem == "integer")
      if v == nil then
        return nil, ("'%s=%s': item %d ('%s') is not %s"):format(key, s, i, item,
          elem == "integer" and "an integer" or "a finite number")
      end
      list[i] = v
    end
  end
  return list
end

--- Text listing the arguments and their defaults (what `help` prints).
function M.usage(defaults)
  local a = rawget(_G, "arg")
  local script = type(a) == "table" and type(a[0]) == "string" and a[0] or "recipe.lua"
  local lines = { ("usage: nnft %s [key=value ...]"):format(script),
                  "arguments (defaults shown):" }
  local keys = sorted_keys(defaults)
  local width = 0
  for _, k in ipairs(keys) do
    local w = #k + 1 + #show(defaults[k])
    if w > width then width = w end
  end
  for _, k in ipairs(keys) do
    local kind, elem = kind_of(k, defaults[k])
    local desc = kind == "list" and ("comma-separated list" .. (elem and (" of " .. elem .. "s") or ""))
      or kind
    local item = k .. "=" .. show(defaults[k])
    lines[#lines + 1] = ("  %s%s  %s"):format(item, (" "):rep(width - #item), desc)
  end
  return table.concat(lines, "\n") .. "\n"
end

local function default_argv()
  local a = rawget(_G, "arg")
  local argv = {}
  if type(a) == "table" then
    for i = 1, #a do argv[i] = a[i] end
  end
  return argv
end

-- The parser; level is the error level of the recipe's call.
local function parse(defaults, argv, level)
  if type(defaults) ~= "table" then
    error("nnft.args: expected a table of defaults, got a " .. type(defaults), level)
  end
  for k, v in pairs(defaults) do
    if type(k) ~= "string" or not k:match("^[%a_][%w_%.%-]*$") then
      error(("nnft.args: default key %s is not a name"):format(tostring(k)), level)
    end
    local kind, err = kind_of(k, v)
    if not kind then error("nnft.args: " .. err, level) end
  end
  if argv ~= nil and type(argv) ~= "table" then
    error("nnft.args: argv must be a list of strings, got a " .. type(argv), level)
  end
  argv = argv and copy_list(argv) or default_argv()

  for _, a in ipairs(argv) do
    if a == "help" or a == "--help" or a == "-h" then
      io.stdout:write(M.usage(defaults))
      io.stdout:flush()
      os.exit(0, true)
    end
  end

  local out, seen = {}, {}
  for k, v in pairs(defaults) do out[k] = type(v) == "table" and copy_list(v) or v end
  local allowed = table.concat(sorted_keys(defaults), ", ")
  for i, a in ipairs(argv) do
    if type(a) ~= "string" then
      error(("nnft.args: argument %d is a %s, expected a key=value string"):format(i, type(a)), level)
    end
    local k, s = a:match("^([^=]+)=(.*)$")
    if not k then
      error(("nnft.args: argument '%s' is not of the form key=value (keys: %s)"):format(a, allowed),
        level)
    end
    if defaults[k] == nil then
      error(("nnft.args: unknown argument '%s' (allowed: %s)"):format(k, allowed), level)
    end
    if seen[k] then error(("nnft.args: argument '%s' given twice"):format(k), level) end
    seen[k] = true
    local v, err = convert(k, s, defaults[k])
    if v == nil then error("nnft.args: " .. err, level) end
    out[k] = v
  end

  local last = {}
  for k, v in pairs(out) do last[k] = type(v) == "table" and copy_list(v) or v end
  state.last_args, state.last_argv = last, argv
  return out
end

--- nnft.args.parse(defaults [, argv]): same as nnft.args(defaults [, argv]).
function M.parse(defaults, argv)
  local r = parse(defaults, argv, 3)
  return r
end

--- The most recently parsed arguments and the raw argv strings they came from (copies), or nil.
function M.last()
  if not state.last_args then return nil end
  local a = {}
  for k, v in pairs(state.last_args) do a[k] = type(v) == "table" and copy_list(v) or v end
  return a, copy_list(state.last_argv)
end

return setmetatable(M, {
  __call = function(_, defaults, argv)
    local r = parse(defaults, argv, 3)
    return r
  end,
})
