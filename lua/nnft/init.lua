--- nnft: the Lua face of the neural-network field theory laboratory.
-- The C primitives come from "nnft.core"; the pure-Lua modules (args, io, plot, ...) are loaded
-- lazily on first access so that `require "nnft"` stays cheap and touches no globals.
local core = require "nnft.core"

local nnft = {}
for k, v in pairs(core) do nnft[k] = v end

-- Pure-Lua modules, loaded on first use: nnft.io, nnft.plot, ... (listed in nnft/modules.lua)
local lazy = require "nnft.modules"

setmetatable(nnft, {
  __index = function(t, k)
    local modname = lazy[k]
    if modname then
      local m = require(modname)
      rawset(t, k, m)
      return m
    end
  end,
})

return nnft
