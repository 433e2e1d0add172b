--- nnft.plot: figures through gnuplot. Each plot writes, beside the picture, its data as CSV
-- (same stem, .csv) and the gnuplot script (.gp) that draws it, then runs gnuplot to produce
-- PNG (pngcairo when available, else png) and SVG. Reference: docs/api/plot.md.
--
-- Scripts are built so that no option can inject gnuplot syntax (gnuplot runs commands through
-- system(), `...`, '<cmd' data files, "|cmd" outputs, load/call/...): user text goes into
-- single-quoted gnuplot strings (no backquote substitution, no backslash escapes; ' is doubled,
-- a newline becomes the separate literal "\n", other control characters are refused), file
-- names are written as './name' (never '<cmd', '|cmd', '-' or '~'), key positions and colours are
-- whitelisted, numbers are formatted here. Under nnft --sandbox, io.popen is disabled: the
-- sandbox hands this module (once, before any recipe code runs) a private runner that checks the
-- script against the grammar this module writes and runs only the gnuplot found when the sandbox
-- started, on files inside out= (lua/nnft/sandbox.lua).
local core = require "nnft.core"
local nio = require "nnft.io"
local C = core._io

-- Captured at load time: under the sandbox this module is loaded before any recipe code runs,
-- so a recipe replacing string.gsub, tostring, nnft._io.fmt ... cannot change what is written.
local type, tostring, ipairs, pairs, pcall, error = type, tostring, ipairs, pairs, pcall, error
local rawget, rawlen, next = rawget, rawlen, next
local sformat, sgsub, smatch, sfind, slower, sgmatch =
  string.format, string.gsub, string.match, string.find, string.lower, string.gmatch
local tconcat, tinsert = table.concat, table.insert
local mfloor, mmax, mmin, mceil, mtype, mhuge = math.floor, math.max, math.min, math.ceil, math.type, math.huge
-- (Not captured: io.popen, os.remove, os.rename, os.getenv are looked up when used, so under the
-- sandbox they are its checked versions -- io.popen is then never used, the runner is.)
local fmt, stat, clock = C.fmt, C.stat, C.clock
local ismat = core.mat.ismat
local write_csv, write_text, record, check_options = nio.write_csv, nio.write_text, nio._record, nio._check_options

local M = {}

-- The sandbox's runner (nil outside the sandbox). Private: set once through M._set_runner,
-- which the sandbox calls before the lock-down; never stored in a table a recipe can reach.
local runner

--- Internal (nnft.sandbox): hand this module the sandbox's gnuplot runner. Once only.
function M._set_runner(f)
  if runner ~= nil then error("nnft.plot._set_runner: the runner is already set", 2) end
  if type(f) ~= "function" then error("nnft.plot._set_runner: expected a function", 2) end
  runner = f
end

local function fail(fname, msg, level) error(fname .. ": " .. msg, level + 1) end

-- Single-quote a string for /bin/sh.
local function shq(s) return "'" .. sgsub(s, "'", "'\\''") .. "'" end

-- A gnuplot single-quoted string: no substitution or escape of any kind happens inside one;
-- the only special character is ' itself, written ''. The caller has refused control characters.
local function sq(s) return "'" .. sgsub(s, "'", "''") .. "'" end

-- User text (title, labels, legend) as a gnuplot string expression: single-quoted pieces joined
-- by the literal "\n" at newlines. Control characters other than newline are refused.
local function gptext(v, what, fname, level)
  if type(v) == "number" then v = tostring(v) end
  if type(v) ~= "string" then fail(fname, what .. " must be a string", level + 1) end
  if sfind(v, "[%z\1-\9\11-\31\127]") then
    fail(fname, what .. " contains a control character (only newlines are allowed in text)", level + 1)
  end
  local parts = {}
  for piece in sgmatch(v .. "\n", "([^\n]*)\n") do parts[#parts + 1] = sq(piece) end
  return tconcat(parts, '."\\n".')
end

-- Text for the CSV header (one line).
local function oneline(v) return (sgsub(tostring(v), "\n", " ")) end

-- A data or picture file in the script's directory: './name', so gnuplot never reads it as
-- '<command', '|command', '-' (stdin) or '~/...'.
local function gpfile(name) return sq("./" .. name) end

-- Key positions: words only, from this list.
local key_words = {}
for w in sgmatch("left right center top bottom inside outside lmargin rmargin tmargin bmargin "
  .. "above below over under horizontal vertical box nobox opaque noopaque reverse noreverse "
  .. "invert noinvert Left Right on off", "%S+") do key_words[w] = true end
M.key_words = key_words

local function check_key(v, fname, level)
  if v == nil or v == false then return v end
  if type(v) ~= "string" then
    fail(fname, "key= must be a gnuplot key position (e.g. 'top left') or false", level + 1)
  end
  local n = 0
  for w in sgmatch(v, "%S+") do
    if not key_words[w] then
      fail(fname, sformat("key= '%s': '%s' is not a key position word (allowed: left, right, "
        .. "center, top, bottom, inside, outside, above, below, lmargin, rmargin, tmargin, "
        .. "bmargin, horizontal, vertical, box, nobox, opaque, reverse, invert, Left, Right, on, "
        .. "off)", oneline(v), oneline(w)), level + 1)
    end
    n = n + 1
  end
  if n == 0 or sfind(v, "[^%a ]") then
    fail(fname, sformat("key= '%s' must be words separated by single spaces, like 'top left'",
      oneline(v)), level + 1)
  end
  return v
end

-- Colours: '#rrggbb', '#aarrggbb' or a gnuplot colour name (letters, digits, '-').
local function check_color(v, what, fname, level)
  if v == nil then return nil end
  if type(v) ~= "string" or not (smatch(v, "^#%x%x%x%x%x%x$") or smatch(v, "^#%x%x%x%x%x%x%x%x$")
      or smatch(v, "^%a[%w%-]*$")) or #v > 40 then
    fail(fname, what .. " must be a colour like '#1f77b4' or a gnuplot colour name like 'red' or "
      .. "'dark-red'", level + 1)
  end
  return v
end

local function numbers(v, what, fname, level)
  if ismat(v) then
    local r, c = v:rows(), v:cols()
    if r ~= 1 and c ~= 1 then fail(fname, sformat("%s is a %d x %d Mat; expected a vector", what, r, c), level + 1) end
    v = v:totable(true)
  end
  if type(v) ~= "table" then fail(fname, sformat("%s must be a Mat or a table of numbers, got a %s", what, type(v)), level + 1) end
  local out = {}
  for i = 1, rawlen(v) do
    local x = rawget(v, i)
    if type(x) ~= "number" then
      fail(fname, sformat("%s[%d] is a %s, expected a number", what, i, type(x)), level + 1)
    end
    out[i] = x
  end
  return out
end

local function check_bool(opts, key, fname, level)
  if opts[key] ~= nil and type(opts[key]) ~= "boolean" then
    fail(fname, key .. "= must be a boolean", level + 1)
  end
end

local function check_range(opts, key, fname, level)
  local r = opts[key]
  if r == nil then return end
  if type(r) ~= "table" or rawlen(r) ~= 2 or type(rawget(r, 1)) ~= "number" or type(rawget(r, 2)) ~= "number" then
    fail(fname, key .. "= must be a pair {lo, hi} of numbers", level + 1)
  end
  local lo, hi = rawget(r, 1), rawget(r, 2)
  if lo ~= lo or hi ~= hi or lo == mhuge or lo == -mhuge or hi == mhuge or hi == -mhuge then
    fail(fname, key .. "= must be finite numbers", level + 1)
  end
  opts[key] = { lo, hi }
end

-- A private copy of the options table: every value read once, without metamethods, so what is
-- checked is what is written.
local function snapshot(opts, keys)
  local o = {}
  for _, k in ipairs(keys) do o[k] = rawget(opts, k) end
  return o
end

-- The stem (path without .png/.svg) and the formats to write.
local function outputs(opts, fname, level)
  local file = opts.file
  if type(file) ~= "string" or file == "" then fail(fname, "file= (the picture's path) is required", level + 1) end
  if sfind(file, "[%z\1-\31\127]") then fail(fname, "file= contains a control character", level + 1) end
  local stem, ext = smatch(file, "^(.*)%.(%w+)$")
  if not (ext and (slower(ext) == "png" or slower(ext) == "svg")) then stem = file end
  local formats = opts.formats or { "png", "svg" }
  if type(formats) == "string" then formats = { formats } end
  if type(formats) ~= "table" or rawlen(formats) == 0 then fail(fname, "formats= must be a list like {'png', 'svg'}", level + 1) end
  local fl = {}
  for i = 1, rawlen(formats) do
    local f = rawget(formats, i)
    if f ~= "png" and f ~= "svg" then fail(fname, sformat("unknown format '%s' (png, svg)", oneline(f)), level + 1) end
    fl[i] = f
  end
  local size = opts.size or { 800, 600 }
  local w, h = type(size) == "table" and rawget(size, 1), type(size) == "table" and rawget(size, 2)
  if mtype(w) ~= "integer" or mtype(h) ~= "integer" or w < 16 or h < 16 or w > 20000 or h > 20000 then
    fail(fname, "size= must be {width, height} in pixels (integers)", level + 1)
  end
  local dir, base = smatch(stem, "^(.*)/([^/]+)$")
  if not dir then dir, base = ".", stem end
  if dir == "" then dir = "/" end
  if base == nil or base == "" then fail(fname, sformat("file= '%s' names no file", file), level + 1) end
  return { stem = stem, dir = dir, base = base, formats = fl, size = { w, h } }
end

-- Common "set" lines for the axes and labels.
local function axes_lines(opts, fname, level)
  local l = {}
  if opts.title ~= nil then l[#l + 1] = "set title " .. gptext(opts.title, "title=", fname, level + 1) end
  if opts.xlabel ~= nil then l[#l + 1] = "set xlabel " .. gptext(opts.xlabel, "xlabel=", fname, level + 1) end
  if opts.ylabel ~= nil then l[#l + 1] = "set ylabel " .. gptext(opts.ylabel, "ylabel=", fname, level + 1) end
  if opts.logx then l[#l + 1] = "set logscale x" end
  if opts.logy then l[#l + 1] = "set logscale y" end
  if opts.xrange then l[#l + 1] = sformat("set xrange [%s:%s]", fmt(opts.xrange[1]), fmt(opts.xrange[2])) end
  if opts.yrange then l[#l + 1] = sformat("set yrange [%s:%s]", fmt(opts.yrange[1]), fmt(opts.yrange[2])) end
  if opts.grid ~= false then l[#l + 1] = "set grid" end
  if opts.key == false then
    l[#l + 1] = "unset key"
  elseif type(opts.key) == "string" then
    l[#l + 1] = "set key " .. opts.key
  end
  return l
end

-- A file name for a '#' comment line in the script (anything odd becomes '?').
local function comment_name(s) return (sgsub(s, "[^%w%._%-+=,]", "?")) end

-- The script: terminals chosen at run time, outputs overridable with -e (nnft writes temporary
-- names and renames them; run by hand, the script writes <stem>.png / <stem>.svg).
local function script(out, csvname, body, header)
  local l = { "# " .. header, "# data: " .. comment_name(csvname) .. "  (regenerate the picture: gnuplot "
              .. comment_name(out.base .. ".gp") .. ")",
              "set datafile separator ','", "set encoding utf8" }
  for _, x in ipairs(body.settings) do l[#l + 1] = x end
  local w, h = out.size[1], out.size[2]
  for _, f in ipairs(out.formats) do
    local var = f .. "_out"
    l[#l + 1] = sformat("if (!exists('%s')) %s = %s", var, var, gpfile(out.base .. "." .. f))
    if f == "png" then
      l[#l + 1] = sformat("if (strstrt(GPVAL_TERMINALS, ' pngcairo ') > 0) { set terminal pngcairo size %d,%d } "
        .. "else { set terminal png size %d,%d }", w, h, w, h)
    else
      l[#l + 1] = sformat("set terminal svg size %d,%d", w, h)
    end
    l[#l + 1] = "set output " .. var
    l[#l + 1] = body.plot
    l[#l + 1] = "unset output"
  end
  return tconcat(l, "\n") .. "\n"
end

local tmp_counter = 0

-- Run gnuplot on the script, rename the temporary pictures into place, record them.
local function render(out, gp_text, opts, fname, level)
  local gpname = out.stem .. ".gp"
  tmp_counter = tmp_counter + 1
  local tag = sformat("tmp-%d-%d", mfloor(clock() * 1e6) % 1000000000, tmp_counter)
  local tmps = {}
  for _, f in ipairs(out.formats) do tmps[f] = sformat("%s.%s.%s", out.base, f, tag) end
  local function cleanup()
    for _, t in pairs(tmps) do os.remove(out.dir .. "/" .. t) end
  end
  local ok, how, code, log, gnuplot
  if runner then
    -- nnft --sandbox: the sandbox's runner writes the script (after checking it) and runs the
    -- gnuplot it found at start-up; gnuplot= and $NNFT_GNUPLOT are not used.
    if opts.gnuplot ~= nil then
      fail(fname, "sandbox: gnuplot= is refused under nnft --sandbox (the sandbox runs the "
        .. "gnuplot found on the PATH when it started)", level + 1)
    end
    local rok, a, b, c, d = pcall(runner, { dir = out.dir, base = out.base, script = gp_text,
                                           formats = out.formats, tmps = tmps })
    if not rok then
      cleanup()
      fail(fname, tostring(a), level + 1)
    end
    ok, how, code, log, gnuplot = a, b, c, d, "gnuplot"
    record(gpname)
  else
    gnuplot = opts.gnuplot or os.getenv("NNFT_GNUPLOT") or "gnuplot"
    if type(gnuplot) ~= "string" or gnuplot == "" then fail(fname, "gnuplot= must be a program name or path", level + 1) end
    write_text(gpname, gp_text)
    local assigns = {}
    for _, f in ipairs(out.formats) do
      assigns[#assigns + 1] = sformat("%s_out=%s", f, gpfile(tmps[f]))
    end
    local cmd = sformat("cd %s && %s -e %s %s 2>&1", shq(out.dir), shq(gnuplot),
      shq(tconcat(assigns, "; ")), shq("./" .. out.base .. ".gp"))
    local p = io.popen(cmd, "r")
    if not p then fail(fname, "cannot start a shell to run gnuplot", level + 1) end
    log = p:read("a") or ""
    ok, how, code = p:close()
  end
  log = sgsub(log or "", "%s+$", "")
  if not ok then
    cleanup()
    if how == "exit" and code == 127 then
      fail(fname, sformat("gnuplot not found (tried '%s'); install it (Debian: apt-get install gnuplot-nox)%s",
        gnuplot, runner and "" or " or pass gnuplot='/path/to/gnuplot'"), level + 1)
    end
    fail(fname, sformat("gnuplot failed (%s %s) on %s:\n%s", tostring(how), tostring(code), gpname, log), level + 1)
  end
  local written = {}
  for _, f in ipairs(out.formats) do
    local tmp = out.dir .. "/" .. tmps[f]
    local kind, size = stat(tmp)
    if kind ~= "file" or size == 0 then
      cleanup()
      fail(fname, sformat("gnuplot did not write the %s picture (script %s):\n%s", f, gpname, log), level + 1)
    end
    local final = out.stem .. "." .. f
    local rok, rerr = os.rename(tmp, final)
    if not rok then
      cleanup()
      fail(fname, sformat("cannot write '%s': %s", final, tostring(rerr)), level + 1)
    end
    record(final)
    written[#written + 1] = final
  end
  return written
end

local lines_keys = { "file", "title", "xlabel", "ylabel", "logx", "logy", "xrange", "yrange",
                     "grid", "key", "size", "formats", "gnuplot", "series" }
local series_keys = { x = true, y = true, yerr = true, label = true, style = true, color = true,
                      width = true }
local styles = { lines = true, points = true, linespoints = true, errorbars = true }

-- Check the options common to both plots; returns the private copy the plot then uses.
local function common_checks(opts, keys, fname, level)
  check_options(opts, fname, keys, level + 1)
  opts = snapshot(opts, keys)
  for _, k in ipairs({ "logx", "logy", "grid" }) do check_bool(opts, k, fname, level + 1) end
  check_range(opts, "xrange", fname, level + 1)
  check_range(opts, "yrange", fname, level + 1)
  for _, k in ipairs({ "title", "xlabel", "ylabel" }) do
    if opts[k] ~= nil then gptext(opts[k], k .. "=", fname, level + 1) end
  end
  check_key(opts.key, fname, level + 1)
  return opts
end

local function files_of(written, out, csvfile)
  tinsert(written, csvfile)
  tinsert(written, out.stem .. ".gp")
  return written
end

--- nnft.plot.lines{file=, series={{x=, y=, yerr=, label=, style=}, ...}, ...} -> list of files
function M.lines(opts)
  local fname = "nnft.plot.lines"
  if type(opts) ~= "table" then fail(fname, "expected a table of options", 2) end
  opts = common_checks(opts, lines_keys, fname, 2)
  local out = outputs(opts, fname, 2)
  local series = opts.series
  if type(series) ~= "table" or rawlen(series) == 0 then fail(fname, "series= must be a non-empty list of {x=, y=, ...}", 2) end

  local any_err = false
  local data = {}
  for s = 1, rawlen(series) do
    local sr = rawget(series, s)
    if type(sr) ~= "table" then fail(fname, sformat("series[%d] must be a table", s), 2) end
    for k in next, sr do
      if not series_keys[k] then
        fail(fname, sformat("series[%d]: unknown key '%s' (allowed: x, y, yerr, label, style, color, width)", s, oneline(k)), 2)
      end
    end
    sr = snapshot(sr, { "x", "y", "yerr", "label", "style", "color", "width" })
    if sr.y == nil then fail(fname, sformat("series[%d]: y= is required", s), 2) end
    local y = numbers(sr.y, sformat("series[%d].y", s), fname, 2)
    local x
    if sr.x ~= nil then
      x = numbers(sr.x, sformat("series[%d].x", s), fname, 2)
    else
      x = {}
      for i = 1, #y do x[i] = i end
    end
    if #x ~= #y then fail(fname, sformat("series[%d]: x has %d values, y has %d", s, #x, #y), 2) end
    if #y == 0 then fail(fname, sformat("series[%d] is empty", s), 2) end
    local yerr
    if sr.yerr ~= nil then
      yerr = numbers(sr.yerr, sformat("series[%d].yerr", s), fname, 2)
      if #yerr ~= #y then fail(fname, sformat("series[%d]: yerr has %d values, y has %d", s, #yerr, #y), 2) end
      any_err = true
    end
    local style = sr.style or (yerr and "errorbars" or "lines")
    if not styles[style] then
      fail(fname, sformat("series[%d]: unknown style '%s' (lines, points, linespoints, errorbars)", s, oneline(style)), 2)
    end
    if style == "errorbars" and not yerr then fail(fname, sformat("series[%d]: style 'errorbars' needs yerr=", s), 2) end
    if sr.label ~= nil and type(sr.label) ~= "string" then fail(fname, sformat("series[%d]: label= must be a string", s), 2) end
    local label = sr.label and sr.label ~= "" and gptext(sr.label, sformat("series[%d]: label=", s), fname, 2)
    check_color(sr.color, sformat("series[%d]: color=", s), fname, 2)
    if sr.width ~= nil and (type(sr.width) ~= "number" or not (sr.width > 0 and sr.width < 1000)) then
      fail(fname, sformat("series[%d]: width= must be a positive number", s), 2)
    end
    data[s] = { x = x, y = y, yerr = yerr, style = style, label = label, rawlabel = sr.label,
                color = sr.color, width = sr.width }
  end

  -- the data, long format: one row per point, series numbered 1..n (labels in the header)
  local cs, cx, cy, ce = {}, {}, {}, {}
  local meta = { plot = "nnft.plot.lines" }
  if opts.title ~= nil then meta.title = oneline(opts.title) end
  local ranges = {}
  for s, d in ipairs(data) do
    local first = #cs
    for i = 1, #d.y do
      cs[#cs + 1] = s
      cx[#cx + 1] = d.x[i]
      cy[#cy + 1] = d.y[i]
      if any_err then ce[#ce + 1] = d.yerr and d.yerr[i] or 0 / 0 end
    end
    ranges[s] = { first, #cs - 1 }
    meta["series " .. s] = d.rawlabel and oneline(d.rawlabel) or ""
  end
  local cols, names = { cs, cx, cy }, { "series", "x", "y" }
  if any_err then cols[4], names[4] = ce, "yerr" end
  local csvfile = out.stem .. ".csv"
  write_csv(csvfile, cols, { columns = names, meta = meta })
  local skip = 0
  for _ in next, meta do skip = skip + 1 end
  skip = skip + 1 -- the column-name line

  local plots = {}
  local csvname = out.base .. ".csv"
  for s, d in ipairs(data) do
    local using, with
    if d.yerr then
      using = "2:3:4"
      with = (d.style == "lines" or d.style == "linespoints") and "yerrorlines" or "yerrorbars"
      if d.style == "lines" then with = with .. " pointtype -1" end
    else
      using = "2:3"
      with = d.style
    end
    local extra = ""
    if d.color then extra = extra .. " linecolor rgb " .. sq(d.color) end
    if d.width then extra = extra .. " linewidth " .. fmt(d.width) end
    local title = d.label and ("title " .. d.label) or "notitle"
    plots[#plots + 1] = sformat("%s skip %d every ::%d::%d using %s with %s%s %s", gpfile(csvname),
      skip, ranges[s][1], ranges[s][2], using, with, extra, title)
  end
  local body = { settings = axes_lines(opts, fname, 2), plot = "plot " .. tconcat(plots, ", \\\n     ") }
  local gp = script(out, csvname, body, "written by nnft.plot.lines")
  return files_of(render(out, gp, opts, fname, 2), out, csvfile)
end

local hist_keys = { "file", "data", "bins", "range", "density", "title", "xlabel", "ylabel",
                    "logy", "label", "color", "grid", "key", "size", "formats", "gnuplot" }

--- nnft.plot.hist{file=, data=, bins=, range=, density=, ...} -> list of files, counts table
function M.hist(opts)
  local fname = "nnft.plot.hist"
  if type(opts) ~= "table" then fail(fname, "expected a table of options", 2) end
  opts = common_checks(opts, hist_keys, fname, 2)
  check_bool(opts, "density", fname, 2)
  check_range(opts, "range", fname, 2)
  local out = outputs(opts, fname, 2)
  if opts.data == nil then fail(fname, "data= is required", 2) end
  if opts.color ~= nil and type(opts.color) ~= "string" then fail(fname, "color= must be a string", 2) end
  check_color(opts.color, "color=", fname, 2)
  if opts.label ~= nil and type(opts.label) ~= "string" then fail(fname, "label= must be a string", 2) end
  local label = opts.label ~= nil and gptext(opts.label, "label=", fname, 2)
  local x
  if ismat(opts.data) then x = numbers(opts.data:totable(true), "data", fname, 2)
  else x = numbers(opts.data, "data", fname, 2) end
  local vals, dropped = {}, 0
  for i = 1, #x do
    local v = x[i]
    if v == v and v ~= mhuge and v ~= -mhuge then vals[#vals + 1] = v else dropped = dropped + 1 end
  end
  if #vals == 0 then fail(fname, "data has no finite values", 2) end
  local lo, hi
  if opts.range then
    lo, hi = opts.range[1], opts.range[2]
    if not (lo < hi) then fail(fname, "range= must have lo < hi", 2) end
  else
    lo, hi = mhuge, -mhuge
    for _, v in ipairs(vals) do
      if v < lo then lo = v end
      if v > hi then hi = v end
    end
    if lo == hi then lo, hi = lo - 0.5, hi + 0.5 end
  end
  local bins = opts.bins
  if bins == nil then -- Rice rule, at most 200
    bins = mmax(1, mmin(200, mceil(2 * (#vals) ^ (1 / 3))))
  end
  if mtype(bins) ~= "integer" or bins < 1 or bins > 1e6 then
    fail(fname, "bins= must be a positive integer", 2)
  end
  local counts = {}
  for b = 1, bins do counts[b] = 0 end
  local width = (hi - lo) / bins
  local outside = 0
  for _, v in ipairs(vals) do
    if v < lo or v > hi then
      outside = outside + 1
    else
      local b = mfloor((v - lo) / width) + 1
      if b > bins then b = bins end -- v == hi goes in the last bin
      counts[b] = counts[b] + 1
    end
  end
  local n = #vals
  local blo, bhi, bc, cnt, dens = {}, {}, {}, {}, {}
  for b = 1, bins do
    blo[b] = lo + (b - 1) * width
    bhi[b] = b == bins and hi or lo + b * width
    bc[b] = 0.5 * (blo[b] + bhi[b])
    cnt[b] = counts[b]
    dens[b] = counts[b] / (n * width)
  end
  local meta = { plot = "nnft.plot.hist", n = n, dropped_nonfinite = dropped, outside_range = outside }
  if opts.title ~= nil then meta.title = oneline(opts.title) end
  local csvfile = out.stem .. ".csv"
  write_csv(csvfile, { blo, bhi, bc, cnt, dens },
    { columns = { "lo", "hi", "center", "count", "density" }, meta = meta })
  local skip = 1
  for _ in next, meta do skip = skip + 1 end

  local settings = axes_lines(opts, fname, 2)
  settings[#settings + 1] = "set style fill solid 0.5 border -1"
  if not opts.logy and not opts.yrange then settings[#settings + 1] = "set yrange [0:*]" end
  local ycol = opts.density and "5" or "4"
  local extra = opts.color and (" linecolor rgb " .. sq(opts.color)) or ""
  local title = label and ("title " .. label) or "notitle"
  local csvname = out.base .. ".csv"
  local body = { settings = settings,
                 plot = sformat("plot %s skip %d using 3:%s:($2-$1) with boxes%s %s", gpfile(csvname),
                   skip, ycol, extra, title) }
  local gp = script(out, csvname, body, "written by nnft.plot.hist")
  return files_of(render(out, gp, opts, fname, 2), out, csvfile), { lo = blo, hi = bhi, count = cnt, density = dens }
end

return M
