-- A recipe that plots, for tests/lua/sandbox_spec.lua: run as
--   nnft --sandbox interp_plot_recipe.lua out=DIR tag=RANDOM
-- It draws legitimate figures into out= and then tries to make nnft.plot (or gnuplot) run a
-- command; every command would create a file named pwned-<tag>-<n> (in /tmp or in out=). It
-- prints one line per attempt:
--   OK <tab> name                 the plot was drawn (injected text must then be literal)
--   REFUSED <tab> name <tab> msg  it raised an error (first line of the message)
-- The spec checks which is expected and that no pwned-* file exists afterwards.
local opts = {}
for _, a in ipairs({ ... }) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if k then opts[k] = v end
end
local out, tag = assert(opts.out, "out= missing"), assert(opts.tag, "tag= missing")
local function pwn(n) return ("touch /tmp/pwned-%s-%d"):format(tag, n) end

local function first_line(s) return (tostring(s):gsub("\n.*", "")) end
local function try(name, f)
  local ok, err = pcall(f)
  print((ok and "OK\t" or "REFUSED\t") .. name .. (ok and "" or "\t" .. first_line(err)))
end

local xs, ys = { 1, 2, 3, 4 }, { 1, 4, 9, 16 }
local function lines(o)
  o.series = o.series or { { x = xs, y = ys, label = "squares" } }
  o.file = o.file or out .. "/inj.png"
  return nnft.plot.lines(o)
end

-- ---- legitimate figures ----
try("lines", function()
  nnft.plot.lines{ file = out .. "/fig.png", title = "a title: x' < y", xlabel = "x", ylabel = "y",
    key = "top left", logy = true, xrange = { 0, 5 },
    series = { { x = xs, y = ys, yerr = { 0.1, 0.2, 0.3, 0.4 }, label = "data", color = "#1f77b4" },
               { x = xs, y = ys, style = "lines", color = "dark-red", width = 2, label = "fit" } } }
end)
try("hist", function()
  local d = {}
  for i = 1, 200 do d[i] = math.sin(i) end
  nnft.io.mkdir(out .. "/sub")
  nnft.plot.hist{ file = out .. "/sub/h.svg", data = d, bins = 10, density = true, label = "sin",
                  color = "red", formats = { "svg", "png" } }
end)
try("lines in a run", function()
  local run = nnft.io.run{ out = out .. "/run" }
  nnft.plot.lines{ file = run:path("r.png"), series = { { y = ys } }, formats = "png" }
  run:finish()
end)

-- ---- injection through text: must be drawn literally (OK), executing nothing ----
try("title backquote", function() lines{ file = out .. "/t1.svg", title = "`" .. pwn(1) .. "`" } end)
try("title newline system", function()
  lines{ file = out .. "/t2.svg", title = 'x"\nsystem("' .. pwn(2) .. '")' }
end)
try("title quote system", function()
  lines{ file = out .. "/t3.svg", title = "x'; system('" .. pwn(3) .. "'); '" }
end)
try("label backquote", function()
  lines{ file = out .. "/t4.svg", xlabel = "$(" .. pwn(4) .. ")", ylabel = "a\\",
         series = { { x = xs, y = ys, label = "`" .. pwn(5) .. "`" } } }
end)
try("file name with quote and backquote", function()
  lines{ file = out .. "/q'`touch pwned-" .. tag .. "-6`$(touch pwned-" .. tag .. "-7).svg" }
end)
try("file name <command", function() lines{ file = out .. "/<touch pwned-" .. tag .. "-8.svg" } end)

-- ---- injection through whitelisted options: refused ----
try("key injection", function() lines{ key = 'top left\nsystem("' .. pwn(9) .. '")' } end)
try("key injection semicolon", function() lines{ key = "top; system('" .. pwn(10) .. "')" } end)
try("color injection", function()
  lines{ series = { { x = xs, y = ys, color = "red' ; system('" .. pwn(11) .. "') ; '" } } }
end)
try("control character", function() lines{ title = "a\rb" } end)

-- ---- choosing the program or the place: refused ----
try("gnuplot= /bin/sh", function() lines{ gnuplot = "/bin/sh" } end)
try("gnuplot= relative", function() lines{ gnuplot = "gnuplot" } end)
try("file outside out", function() lines{ file = out .. "/../pwned-" .. tag .. "-12.png" } end)
try("file absolute outside", function() lines{ file = "/tmp/pwned-" .. tag .. "-13.png" } end)

-- ---- reaching the runner: refused ----
try("set_runner again", function()
  package.loaded["nnft.plot"]._set_runner(function() end)
end)
try("fresh nnft.plot", function()
  package.loaded["nnft.plot"] = nil
  local fresh = require "nnft.plot"
  local ok = pcall(fresh._set_runner, function(req) -- the recipe's own "runner": no power
    return os.execute(pwn(14))
  end)
  assert(ok)
  fresh.lines{ file = out .. "/fresh.png", series = { { y = ys } } }
end)
try("runner in the module tables", function()
  for _, m in ipairs({ package.loaded["nnft.plot"], nnft.plot, package.loaded["nnft.sandbox"] }) do
    for k, v in pairs(m) do
      if type(v) == "function" and k ~= "lines" and k ~= "hist" and k ~= "_set_runner"
          and k ~= "install" and k ~= "active" and k ~= "_check_script" then
        error("unexpected function " .. k)
      end
    end
  end
  error("no runner in the module tables")
end)
try("sandbox install again", function()
  package.loaded["nnft.sandbox"].install{ resolve = print, mkdir = print }
end)

-- ---- replaced library functions: plot captured its own at load time ----
try("patched string.gsub and nnft._io.fmt", function()
  local g, f = string.gsub, nnft._io.fmt
  string.gsub = function(s) return s, 0 end
  nnft._io.fmt = function() return '1]; system("' .. pwn(15) .. '"); #' end
  local ok, err = pcall(lines, { file = out .. "/patched.svg", title = "it's `" .. pwn(16) .. "`",
                                 xrange = { 0, 1 } })
  string.gsub, nnft._io.fmt = g, f
  if not ok then error(err, 0) end
end)

-- ---- a finalizer rewriting the script while nnft.plot works ----
try("finalizer rewrites the script", function()
  local evil = 'set print "|' .. pwn(17) .. '"\nprint 1\n!' .. pwn(18) .. "\n"
  for _ = 1, 2000 do
    setmetatable({}, { __gc = function()
      local f = io.open(out .. "/gc.gp", "w")
      if f then f:write(evil); f:close() end
    end })
  end
  for _ = 1, 3 do lines{ file = out .. "/gc.svg" } end
end)
print("END")
