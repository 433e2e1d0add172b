--- nnft.progress: a progress bar on stderr for long loops, with rate and ETA. Drawn only when
-- stderr is a terminal (silent in pipes, logs, CI), redrawn at most every 0.1 s.
--
--   local bar = nnft.progress.new(n, { label = "sampling" })
--   for i = 1, n do work(i); bar:update(i) end
--   bar:finish()
--   -- or: for i in nnft.progress.range(n, { label = "sampling" }) do work(i) end
local core = require "nnft.core"
local C = core._io

local M = {}

local Bar = {}
Bar.__index = Bar
Bar.__name = "nnft.progress.Bar"

local function human(x)
  if x >= 1e9 then return ("%.1fG"):format(x / 1e9) end
  if x >= 1e6 then return ("%.1fM"):format(x / 1e6) end
  if x >= 1e4 then return ("%.1fk"):format(x / 1e3) end
  if x >= 100 then return ("%.0f"):format(x) end
  return ("%.3g"):format(x)
end

local function clock_text(s)
  if s ~= s or s == math.huge then return "--:--" end
  s = math.floor(s + 0.5)
  local h, m, sec = s // 3600, (s % 3600) // 60, s % 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, sec) end
  return ("%02d:%02d"):format(m, sec)
end

--- The bar's text for done of total after elapsed seconds (no carriage return).
function M.format(label, done, total, elapsed, width)
  width = width or 30
  local rate = elapsed > 0 and done / elapsed or 0
  local parts = {}
  if label and label ~= "" then parts[#parts + 1] = label end
  if total and total > 0 then
    local frac = math.min(1, math.max(0, done / total))
    local fill = math.floor(frac * width + 0.5)
    parts[#parts + 1] = "[" .. ("#"):rep(fill) .. ("."):rep(width - fill) .. "]"
    parts[#parts + 1] = ("%3d%%"):format(math.floor(frac * 100))
    parts[#parts + 1] = ("%s/%s"):format(human(done), human(total))
    parts[#parts + 1] = human(rate) .. "/s"
    local eta = rate > 0 and (total - done) / rate or math.huge
    if done >= total then
      parts[#parts + 1] = "in " .. clock_text(elapsed)
    else
      parts[#parts + 1] = "ETA " .. clock_text(eta)
    end
  else
    parts[#parts + 1] = human(done)
    parts[#parts + 1] = human(rate) .. "/s"
    parts[#parts + 1] = clock_text(elapsed)
  end
  return table.concat(parts, " ")
end

--- nnft.progress.new(total [, opts]) -> Bar. total may be nil (unknown: count and rate only).
-- opts: label (string), stream (default io.stderr), enabled (default: stream is io.stderr and
-- stderr is a terminal), interval (seconds between redraws, default 0.1).
function M.new(total, opts)
  if total ~= nil and (type(total) ~= "number" or total < 0) then
    error("nnft.progress.new: total must be a non-negative number or nil", 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("nnft.progress.new: options must be a table", 2) end
  for k in pairs(opts) do
    if k ~= "label" and k ~= "stream" and k ~= "enabled" and k ~= "interval" then
      error(("nnft.progress.new: unknown option '%s' (allowed: enabled, interval, label, stream)")
        :format(tostring(k)), 2)
    end
  end
  if opts.label ~= nil and type(opts.label) ~= "string" then
    error("nnft.progress.new: label must be a string", 2)
  end
  local stream = opts.stream or io.stderr
  local enabled = opts.enabled
  if enabled == nil then enabled = stream == io.stderr and C.isatty(2) end
  local t0 = C.clock()
  return setmetatable({
    total = total, done = 0, label = opts.label, stream = stream, enabled = enabled and true or false,
    interval = opts.interval or 0.1, _t0 = t0, _last = -math.huge, _drawn = false, _width = 0,
  }, Bar)
end

function Bar:_draw(now)
  local text = M.format(self.label, self.done, self.total, now - self._t0)
  local pad = self._width > #text and (" "):rep(self._width - #text) or ""
  self._width = #text
  self.stream:write("\r", text, pad)
  if self.stream.flush then self.stream:flush() end
  self._drawn = true
  self._last = now
end

--- bar:update(done): set the count of finished items (redraws if due).
function Bar:update(done)
  if type(done) ~= "number" then error("nnft.progress: update expects a number", 2) end
  self.done = done
  if not self.enabled then return end
  local now = C.clock()
  if now - self._last >= self.interval then self:_draw(now) end
end

--- bar:tick([n]): n (default 1) more items finished.
function Bar:tick(n)
  self:update(self.done + (n or 1))
end

--- bar:finish(): draw the final state and end the line.
function Bar:finish()
  if self._finished then return end
  self._finished = true
  if not self.enabled then return end
  self:_draw(C.clock())
  self.stream:write("\n")
  if self.stream.flush then self.stream:flush() end
end

Bar.__close = Bar.finish

--- nnft.progress.range(n [, opts]): iterate i = 1..n with a bar; finishes after the last.
function M.range(n, opts)
  if math.type(n) ~= "integer" or n < 0 then
    error("nnft.progress.range: n must be a non-negative integer", 2)
  end
  local bar = M.new(n, opts)
  local i = 0
  return function()
    if i > 0 then bar:update(i) end
    if i >= n then
      bar:finish()
      return nil
    end
    i = i + 1
    return i
  end
end

return setmetatable(M, { __call = function(_, total, opts) return M.new(total, opts) end })
