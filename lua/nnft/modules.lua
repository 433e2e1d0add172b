--- The pure-Lua modules of nnft that `require "nnft"` loads lazily, on first access
-- (nnft.args, nnft.io, ...): one list for init.lua and for help/completion.
return {
  args = "nnft.args", io = "nnft.io", plot = "nnft.plot", help = "nnft.help",
  progress = "nnft.progress", reproduce = "nnft.reproduce", rg = "nnft.rg", brg = "nnft.brg",
}
