-- nnft.plot: gnuplot-driven PNG + SVG, with the data (.csv) and script (.gp) beside them.
local nnft = require "nnft"

local U = require "spec_util"
local shq, slurp, listdir = U.q, U.slurp, U.listdir

local have_gnuplot = os.execute("command -v gnuplot >/dev/null 2>&1") == true

describe("nnft.plot", function()
  local tmp
  setup(function() tmp = nnft._io.mkdtemp("nnft-plot-spec-") end)
  teardown(function() if tmp then os.execute("rm -rf " .. shq(tmp)) end end)

  it("lines writes PNG, SVG, CSV and the gnuplot script", function()
    if not have_gnuplot then return pending("gnuplot is not installed") end
    local x = nnft.mat.linspace(0, 1, 11)
    local files = nnft.plot.lines{
      file = tmp .. "/fig.png", title = "a title", xlabel = "x", ylabel = "f(x)", logy = false,
      series = {
        { x = x, y = x:exp(), label = "exp" },
        { x = { 0.5, 0.75 }, y = { 1, 2 }, yerr = { 0.1, 0.2 }, label = "data" },
        { y = { 3, 2, 1 }, style = "points" },
      },
    }
    assert.are.same({ tmp .. "/fig.png", tmp .. "/fig.svg", tmp .. "/fig.csv", tmp .. "/fig.gp" },
      files)
    assert.are.equal("\137PNG", slurp(tmp .. "/fig.png"):sub(1, 4))
    assert.matches("<svg", slurp(tmp .. "/fig.svg"), 1, true)
    local cols, meta, names = nnft.io.read_csv(tmp .. "/fig.csv")
    assert.are.same({ "series", "x", "y", "yerr" }, names)
    assert.are.equal("exp", meta["series 1"])
    assert.are.equal("data", meta["series 2"])
    assert.are.equal(11 + 2 + 3, #cols.x)
    assert.are.equal(math.exp(1), cols.y[11])
    assert.are.equal(0.2, cols.yerr[13])
    assert.are.equal(3, cols.x[16]) -- default x = 1..n
    assert.matches("yerrorbars", slurp(tmp .. "/fig.gp"), 1, true)
    assert.are.same({ "fig.csv", "fig.gp", "fig.png", "fig.svg" }, listdir(tmp))
  end)

  it("hist bins the data and writes the same four files", function()
    if not have_gnuplot then return pending("gnuplot is not installed") end
    local data = {}
    for i = 1, 100 do data[i] = (i % 10) + 0.5 end
    data[101] = 0 / 0
    local files, h = nnft.plot.hist{ file = tmp .. "/h", data = data, bins = 10, range = { 0, 10 },
                                     density = true, xlabel = "v" }
    assert.are.equal(tmp .. "/h.png", files[1])
    assert.are.equal(tmp .. "/h.svg", files[2])
    local total = 0
    for b = 1, 10 do
      total = total + h.count[b]
      assert.are.equal(10, h.count[b])
      assert.is_true(math.abs(h.density[b] - 0.1) < 1e-12)
    end
    assert.are.equal(100, total)
    local _, meta = nnft.io.read_csv(tmp .. "/h.csv")
    assert.are.equal(1, meta.dropped_nonfinite)
  end)

  it("hist without bins= uses the Rice rule ceil(2 n^(1/3))", function()
    if not have_gnuplot then return pending("gnuplot is not installed") end
    local data = {}
    for i = 1, 1000 do data[i] = i end
    local _, h = nnft.plot.hist{ file = tmp .. "/rice", data = data, formats = "svg" }
    assert.are.equal(20, #h.count)
  end)

  it("writes only the formats asked for", function()
    if not have_gnuplot then return pending("gnuplot is not installed") end
    local dir = tmp .. "/svgonly"
    nnft.io.mkdir(dir)
    nnft.plot.lines{ file = dir .. "/s.svg", formats = { "svg" }, series = { { y = { 1, 2 } } } }
    assert.are.same({ "s.csv", "s.gp", "s.svg" }, listdir(dir))
  end)

  it("records its files when they are written into a run", function()
    if not have_gnuplot then return pending("gnuplot is not installed") end
    local run = nnft.io.run{ out = tmp .. "/run" }
    nnft.plot.lines{ file = run:path("p.png"), series = { { y = { 1, 4, 9 } } } }
    local m = run:finish()
    local names = {}
    for _, o in ipairs(m.outputs) do names[#names + 1] = o.file end
    table.sort(names)
    assert.are.same({ "p.csv", "p.gp", "p.png", "p.svg" }, names)
  end)

  it("rejects unknown options and malformed series", function()
    local f = tmp .. "/bad.png"
    local ok, err = pcall(nnft.plot.lines, { file = f, titel = "x", series = { { y = { 1 } } } })
    assert.is_false(ok)
    assert.matches("unknown option 'titel'", err, 1, true)
    ok, err = pcall(nnft.plot.lines, { file = f, series = { { y = { 1 }, colour = "red" } } })
    assert.is_false(ok)
    assert.matches("unknown key 'colour'", err, 1, true)
    assert.has_error(function() nnft.plot.lines{ series = { { y = { 1 } } } } end)
    assert.has_error(function() nnft.plot.lines{ file = f, series = {} } end)
    assert.has_error(function() nnft.plot.lines{ file = f, series = { { x = { 1, 2 }, y = { 1 } } } } end)
    assert.has_error(function() nnft.plot.lines{ file = f, series = { { y = { 1 }, style = "bars" } } } end)
    assert.has_error(function() nnft.plot.lines{ file = f, series = { { y = { 1 }, style = "errorbars" } } } end)
    assert.has_error(function() nnft.plot.lines{ file = f, logx = "yes", series = { { y = { 1 } } } } end)
    assert.has_error(function() nnft.plot.lines{ file = f, formats = { "jpg" }, series = { { y = { 1 } } } } end)
    assert.has_error(function() nnft.plot.hist{ file = f, data = { 1 }, bins = 2.5 } end)
    assert.has_error(function() nnft.plot.hist{ file = f, data = { 0 / 0 } } end)
    assert.has_error(function() nnft.plot.hist{ file = f, data = { 1 }, normed = true } end)
  end)

  describe("with hostile text (no sandbox)", function()
    math.randomseed(os.time() + math.floor(os.clock() * 1e6))
    local tag = ("%d%06d"):format(os.time(), math.random(0, 999999))
    local function pwn(n) return ("touch /tmp/pwned-%s-%d"):format(tag, n) end
    -- Files an injected command would have created (in /tmp or, run from there, in tmp).
    local function pwned()
      local p = io.popen("find /tmp " .. shq(tmp) .. " -name " .. shq("pwned-" .. tag .. "-*")
        .. " 2>/dev/null")
      local found = p:read("a")
      p:close()
      return found
    end

    it("draws titles, labels, legends and file names literally, running nothing", function()
      if not have_gnuplot then return pending("gnuplot is not installed") end
      local dir = tmp .. "/hostile"
      nnft.io.mkdir(dir)
      local x = { 1, 2, 3 }
      local texts = {
        title = "`" .. pwn(1) .. "`",
        xlabel = 'x"\nsystem("' .. pwn(2) .. '")',
        ylabel = "x'; system('" .. pwn(3) .. "'); '",
        label = "$(" .. pwn(4) .. ") `" .. pwn(5) .. "`",
      }
      nnft.plot.lines{ file = dir .. "/l.svg", formats = "svg", title = texts.title,
        xlabel = texts.xlabel, ylabel = texts.ylabel,
        series = { { x = x, y = x, label = texts.label }, { x = x, y = x, yerr = x, label = "a\\" } } }
      local svg = slurp(dir .. "/l.svg")
      assert.matches("`" .. pwn(1) .. "`", svg, 1, true)
      assert.matches('system("' .. pwn(2) .. '")', svg, 1, true)
      assert.matches("x'; system('" .. pwn(3) .. "'); '", svg, 1, true)
      assert.matches("$(" .. pwn(4) .. ") `" .. pwn(5) .. "`", svg, 1, true)
      local _, h = nnft.plot.hist{ file = dir .. "/h.svg", formats = "svg", data = x,
        label = "`" .. pwn(6) .. "`", title = "\n!" .. pwn(7) }
      assert.are.equal(3, #h.count)
      assert.matches("`" .. pwn(6) .. "`", slurp(dir .. "/h.svg"), 1, true)
      -- file names: quotes, backquotes, $(...), a leading '<' (gnuplot's "read from a command")
      for _, name in ipairs({ "q'`touch pwned-" .. tag .. "-8`$(touch pwned-" .. tag .. "-9)",
                              "<touch pwned-" .. tag .. "-10", "|touch pwned-" .. tag .. "-11" }) do
        local files = nnft.plot.lines{ file = dir .. "/" .. name .. ".png", series = { { y = x } } }
        assert.are.equal(4, #files)
        assert.are.equal("\137PNG", slurp(dir .. "/" .. name .. ".png"):sub(1, 4))
      end
      assert.are.equal("", pwned())
      -- and every script written passes the sandbox's check
      local check = require("nnft.sandbox")._check_script
      for _, name in ipairs(listdir(dir)) do
        if name:match("%.gp$") then assert.is_true((check(slurp(dir .. "/" .. name))), name) end
      end
    end)

    it("refuses key positions, colours and control characters that are not plain", function()
      local dir = tmp .. "/hostile2"
      nnft.io.mkdir(dir)
      local function try(o)
        o.file = dir .. "/k.png"
        o.series = o.series or { { y = { 1, 2 } } }
        local ok, err = pcall(nnft.plot.lines, o)
        assert.is_false(ok)
        return err
      end
      assert.matches("not a key position word", try{ key = 'top left\nsystem("' .. pwn(12) .. '")' }, 1, true)
      assert.matches("not a key position word", try{ key = "top; system('" .. pwn(13) .. "')" }, 1, true)
      assert.matches("not a key position word", try{ key = "at `" .. pwn(14) .. "`" }, 1, true)
      assert.matches("color= must be a colour",
        try{ series = { { y = { 1, 2 }, color = "red' ; system('" .. pwn(15) .. "') ; '" } } }, 1, true)
      assert.matches("color= must be a colour",
        try{ series = { { y = { 1, 2 }, color = "`" .. pwn(16) .. "`" } } }, 1, true)
      assert.matches("contains a control character", try{ title = "a\rb" }, 1, true)
      assert.matches("contains a control character", try{ series = { { y = { 1, 2 }, label = "a\0b" } } }, 1, true)
      local ok, err = pcall(nnft.plot.lines, { file = dir .. "/a\nb.png", series = { { y = { 1 } } } })
      assert.is_false(ok)
      assert.matches("file= contains a control character", err, 1, true)
      ok, err = pcall(nnft.plot.hist, { file = dir .. "/hh.png", data = { 1 }, color = "red;x" })
      assert.is_false(ok)
      assert.matches("color= must be a colour", err, 1, true)
      assert.are.same({}, listdir(dir))
      assert.are.equal("", pwned())
    end)

    it("accepts the key positions and colours recipes use", function()
      if not have_gnuplot then return pending("gnuplot is not installed") end
      local dir = tmp .. "/keys"
      nnft.io.mkdir(dir)
      for i, key in ipairs({ "top left", "top right", "bottom left", "bottom right",
                             "outside right top", "below horizontal box" }) do
        nnft.plot.lines{ file = dir .. "/k" .. i .. ".svg", formats = "svg", key = key,
          series = { { y = { 1, 2 }, color = ({ "#1f77b4", "black", "dark-red", "#801f77b4",
            "gray", "web-blue" })[i] } } }
      end
      assert.are.equal(18, #listdir(dir))
    end)
  end)

  it("says clearly when gnuplot is missing or fails, leaving no picture", function()
    local dir = tmp .. "/fail"
    nnft.io.mkdir(dir)
    local ok, err = pcall(nnft.plot.lines, { file = dir .. "/x.png", gnuplot = "/nonexistent/gnuplot",
                                             series = { { y = { 1, 2 } } } })
    assert.is_false(ok)
    assert.matches("gnuplot not found", err, 1, true)
    ok, err = pcall(nnft.plot.lines, { file = dir .. "/y.png", gnuplot = "false",
                                       series = { { y = { 1, 2 } } } })
    assert.is_false(ok)
    assert.matches("gnuplot failed", err, 1, true)
    for _, name in ipairs(listdir(dir)) do
      assert.is_nil(name:match("%.png") or name:match("%.svg"))
    end
  end)
end)
