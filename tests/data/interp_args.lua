-- Fixture for tests/lua/interpreter_spec.lua: echo how the interpreter passed arguments.
print("arg0", arg[0])
print("argn", #arg, select("#", ...))
for i = 1, #arg do print("arg", i, arg[i], (select(i, ...))) end
print("nnft", type(nnft), type(nnft.mat))
