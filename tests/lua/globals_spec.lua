-- require "nnft" and each of its lazily loaded modules leave _G untouched: no key added,
-- removed or changed, and no global written even temporarily. Works under stock lua5.4 (where
-- there is no global nnft) and under the nnft interpreter (where the global nnft exists already
-- and must stay the same value).
local G = _G -- the real global table (busted runs specs in their own environment)

-- The modules that `nnft.<name>` loads on first access (lua/nnft/init.lua); those not written
-- yet are reported as pending.
local LAZY = {"args", "io", "plot", "help", "progress"}

local function snapshot()
  local t = {}
  for k, v in pairs(G) do t[k] = v end
  return t
end

-- Human-readable list of differences between two snapshots ("" when equal).
local function diff(before, after)
  local out = {}
  for k, v in pairs(after) do
    if before[k] == nil then out[#out + 1] = "added " .. tostring(k)
    elseif before[k] ~= v then out[#out + 1] = "changed " .. tostring(k) end
  end
  for k in pairs(before) do
    if after[k] == nil then out[#out + 1] = "removed " .. tostring(k) end
  end
  table.sort(out)
  return table.concat(out, ", ")
end

-- Run f with every write of a new global recorded (and still performed, so behaviour is the
-- same); returns the names written, f's error if any.
local function watching_writes(f)
  local written = {}
  local old_mt = getmetatable(G)
  setmetatable(G, {
    __newindex = function(t, k, v)
      written[#written + 1] = tostring(k)
      rawset(t, k, v)
    end,
    __index = old_mt and old_mt.__index or nil,
  })
  local ok, err = pcall(f)
  setmetatable(G, old_mt)
  table.sort(written)
  return table.concat(written, ", "), (not ok) and tostring(err) or nil
end

-- Forget a module so that the next require runs its code again.
local function unload(name) package.loaded[name] = nil end

describe("globals", function()
  it("require 'nnft' (and its C core) touches no global", function()
    local before_nnft = rawget(G, "nnft") -- a table in the interpreter, nil under lua5.4
    unload("nnft")
    unload("nnft.core")
    local before = snapshot()
    local nnft
    local writes, err = watching_writes(function() nnft = require "nnft" end)
    assert.is_nil(err)
    assert.are.equal("", writes, "globals written by require 'nnft'")
    assert.are.equal("", diff(before, snapshot()), "_G changed by require 'nnft'")
    assert.are.equal(before_nnft, rawget(G, "nnft"))
    assert.are.equal("table", type(nnft))
    assert.are.equal("table", type(nnft.mat))
  end)

  it("using nnft.mat touches no global", function()
    local nnft = require "nnft"
    local before = snapshot()
    local writes, err = watching_writes(function()
      local A = nnft.mat{{1, 2}, {3, 4}}
      local s = tostring(A * A:t() + 1) .. tostring(A:row(1):sum())
      assert(#s > 0)
      A:release()
    end)
    assert.is_nil(err)
    assert.are.equal("", writes)
    assert.are.equal("", diff(before, snapshot()))
  end)

  for _, name in ipairs(LAZY) do
    local modname = "nnft." .. name
    local found = package.searchpath(modname, package.path) or package.preload[modname]
    if not found then
      pending(modname .. " does not exist yet")
    else
      it("loading " .. modname .. " lazily touches no global", function()
        local nnft = require "nnft"
        unload(modname)
        rawset(nnft, name, nil) -- forget the cached field so __index loads it again
        local before = snapshot()
        local m
        local writes, err = watching_writes(function() m = nnft[name] end)
        assert.is_nil(err, modname .. " failed to load")
        assert.are.equal("", writes, "globals written by " .. modname)
        assert.are.equal("", diff(before, snapshot()), "_G changed by " .. modname)
        assert.is_not_nil(m)
        assert.are.equal(m, nnft[name]) -- cached after the first access
        assert.are.equal(m, require(modname))
      end)
    end
  end
end)
