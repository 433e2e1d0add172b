-- Fixture for tests/lua/interpreter_spec.lua: a module for `nnft -l interp_mod`.
return { answer = 42 }
