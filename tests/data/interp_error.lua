-- Fixture for tests/lua/interpreter_spec.lua: an error two calls deep (the traceback names them).
local function inner() error("interp-fixture-boom") end
local function outer() inner() end
outer()
