--- nnft.plot: figures through gnuplot. Each plot writes, beside the picture, its data as CSV
-- (same stem, .csv) and the gnuplot script (.gp) that draws it, then runs gnuplot to produce
-- PNG (pngcairo when available, else png) and SVG. Reference: docs/api/plot.md.
local core = require "nnft.core"
local nio = require "nnft.io"
local C = core._io

local M = {}

local function fail(fname, msg, level) error(fname .. ": " .. msg, level + 1) end

-- Single-quote a string for /bin/sh.
local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- A gnuplot double-quoted string.
local function gpq(s)
  return '"' .. tostring(s):gsub('[\\"]', "\\%0"):gsub("\n", "\\n") .. '"'
end

local function numbers(v, what, fname, level)
  if core.mat.ismat(v) then
    local r, c = v:rows(), v:cols()
    if r ~= 1 and c ~= 1 then fail(fname, ("%s is a %d x %d Mat; expected a vector"):format(what, r, c), level + 1) end
    return v:totable(true)
  end
  if type(v) ~= "table" then fail(fname, ("%s must be a Mat or a table of numbers, got a %s"):format(what, type(v)), level + 1) end
  for i = 1, #v do
    if type(v[i]) ~= "number" then
      fail(fname, ("%s[%d] is a %s, expected a number"):format(what, i, type(v[i])), level + 1)
    end
  end
  return v
end

local function check_bool(opts, key, fname, level)
  if opts[key] ~= nil and type(opts[key]) ~= "boolean" then
    fail(fname, key .. "= must be a boolean", level + 1)
  end
end

local function check_range(opts, key, fname, level)
  local r = opts[key]
  if r == nil then return end
  if type(r) ~= "table" or #r ~= 2 or type(r[1]) ~= "number" or type(r[2]) ~= "number" then
    fail(fname, key .. "= must be a pair {lo, hi} of numbers", level + 1)
  end
end

-- The stem (path without .png/.svg) and the formats to write.
local function outputs(opts, fname, level)
  local file = opts.file
  if type(file) ~= "string" or file == "" then fail(fname, "file= (the picture's path) is required", level + 1) end
  local stem, ext = file:match("^(.*)%.(%w+)$")
  if not (ext and (ext:lower() == "png" or ext:lower() == "svg")) then stem = file end
  local formats = opts.formats or { "png", "svg" }
  if type(formats) == "string" then formats = { formats } end
  if type(formats) ~= "table" or #formats == 0 then fail(fname, "formats= must be a list like {'png', 'svg'}", level + 1) end
  for _, f in ipairs(formats) do
    if f ~= "png" and f ~= "svg" then fail(fname, ("unknown format '%s' (png, svg)"):format(tostring(f)), level + 1) end
  end
  local size = opts.size or { 800, 600 }
  if type(size) ~= "table" or math.type(size[1]) ~= "integer" or math.type(size[2]) ~= "integer"
      or size[1] < 16 or size[2] < 16 or size[1] > 20000 or size[2] > 20000 then
    fail(fname, "size= must be {width, height} in pixels (integers)", level + 1)
  end
  local dir, base = stem:match("^(.*)/([^/]+)$")
  if not dir then dir, base = ".", stem end
  if dir == "" then dir = "/" end
  return { stem = stem, dir = dir, base = base, formats = formats, size = size }
end

-- Common "set" lines for the axes and labels.
local function axes_lines(opts)
  local l = {}
  if opts.title then l[#l + 1] = "set title " .. gpq(opts.title) end
  if opts.xlabel then l[#l + 1] = "set xlabel " .. gpq(opts.xlabel) end
  if opts.ylabel then l[#l + 1] = "set ylabel " .. gpq(opts.ylabel) end
  if opts.logx then l[#l + 1] = "set logscale x" end
  if opts.logy then l[#l + 1] = "set logscale y" end
  if opts.xrange then l[#l + 1] = ("set xrange [%s:%s]"):format(C.fmt(opts.xrange[1]), C.fmt(opts.xrange[2])) end
  if opts.yrange then l[#l + 1] = ("set yrange [%s:%s]"):format(C.fmt(opts.yrange[1]), C.fmt(opts.yrange[2])) end
  if opts.grid ~= false then l[#l + 1] = "set grid" end
  if opts.key == false then
    l[#l + 1] = "unset key"
  elseif type(opts.key) == "string" then
    l[#l + 1] = "set key " .. opts.key
  end
  return l
end

-- The script: terminals chosen at run time, outputs overridable with -e (nnft writes temporary
-- names and renames them; run by hand, the script writes <stem>.png / <stem>.svg).
local function script(out, csvname, body, header)
  local l = { "# " .. header, "# data: " .. csvname .. "  (regenerate the picture: gnuplot " .. out.base .. ".gp)",
              'set datafile separator ","', "set encoding utf8" }
  for _, x in ipairs(body.settings) do l[#l + 1] = x end
  local w, h = out.size[1], out.size[2]
  for _, f in ipairs(out.formats) do
    local var = f .. "_out"
    l[#l + 1] = ("if (!exists(%q)) %s = %s"):format(var, var, gpq(out.base .. "." .. f))
    if f == "png" then
      l[#l + 1] = ('if (strstrt(GPVAL_TERMINALS, " pngcairo ") > 0) { set terminal pngcairo size %d,%d } '
        .. "else { set terminal png size %d,%d }"):format(w, h, w, h)
    else
      l[#l + 1] = ("set terminal svg size %d,%d"):format(w, h)
    end
    l[#l + 1] = "set output " .. var
    l[#l + 1] = body.plot
    l[#l + 1] = "unset output"
  end
  return table.concat(l, "\n") .. "\n"
end

local tmp_counter = 0

-- Run gnuplot on the script, rename the temporary pictures into place, record them.
local function render(out, gp_text, opts, fname, level)
  local gnuplot = opts.gnuplot or os.getenv("NNFT_GNUPLOT") or "gnuplot"
  if type(gnuplot) ~= "string" or gnuplot == "" then fail(fname, "gnuplot= must be a program name or path", level + 1) end
  local gpfile = out.stem .. ".gp"
  nio.write_text(gpfile, gp_text)
  tmp_counter = tmp_counter + 1
  local tag = ("tmp-%d-%d"):format(math.floor(C.clock() * 1e6) % 1000000000, tmp_counter)
  local assigns, tmps = {}, {}
  for _, f in ipairs(out.formats) do
    local tmpname = ("%s.%s.%s"):format(out.base, f, tag)
    tmps[f] = tmpname
    assigns[#assigns + 1] = ("%s_out=%s"):format(f, gpq(tmpname))
  end
  local function cleanup()
    for _, t in pairs(tmps) do os.remove(out.dir .. "/" .. t) end
  end
  local cmd = ("cd %s && %s -e %s %s 2>&1"):format(shq(out.dir), shq(gnuplot),
    shq(table.concat(assigns, "; ")), shq(out.base .. ".gp"))
  local p = io.popen(cmd, "r")
  if not p then fail(fname, "cannot start a shell to run gnuplot", level + 1) end
  local log = p:read("a") or ""
  local ok, how, code = p:close()
  if not ok then
    cleanup()
    if how == "exit" and code == 127 then
      fail(fname, ("gnuplot not found (tried '%s'); install it (Debian: apt-get install gnuplot-nox) "
        .. "or pass gnuplot='/path/to/gnuplot'"):format(gnuplot), level + 1)
    end
    fail(fname, ("gnuplot failed (%s %s) on %s:\n%s"):format(how, tostring(code), gpfile,
      log:gsub("%s+$", "")), level + 1)
  end
  local written = {}
  for _, f in ipairs(out.formats) do
    local tmp = out.dir .. "/" .. tmps[f]
    local kind, size = C.stat(tmp)
    if kind ~= "file" or size == 0 then
      cleanup()
      fail(fname, ("gnuplot did not write the %s picture (script %s):\n%s"):format(f, gpfile,
        log:gsub("%s+$", "")), level + 1)
    end
    local final = out.stem .. "." .. f
    local rok, rerr = os.rename(tmp, final)
    if not rok then
      cleanup()
      fail(fname, ("cannot write '%s': %s"):format(final, tostring(rerr)), level + 1)
    end
    nio._record(final)
    written[#written + 1] = final
  end
  return written
end

local lines_keys = { "file", "title", "xlabel", "ylabel", "logx", "logy", "xrange", "yrange",
                     "grid", "key", "size", "formats", "gnuplot", "series" }
local series_keys = { x = true, y = true, yerr = true, label = true, style = true, color = true,
                      width = true }
local styles = { lines = true, points = true, linespoints = true, errorbars = true }

local function common_checks(opts, fname, level)
  for _, k in ipairs({ "logx", "logy", "grid" }) do check_bool(opts, k, fname, level + 1) end
  check_range(opts, "xrange", fname, level + 1)
  check_range(opts, "yrange", fname, level + 1)
  for _, k in ipairs({ "title", "xlabel", "ylabel" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "string" and type(opts[k]) ~= "number" then
      fail(fname, k .. "= must be a string", level + 1)
    end
  end
  if opts.key ~= nil and opts.key ~= false and type(opts.key) ~= "string" then
    fail(fname, "key= must be a gnuplot key position (e.g. 'top left') or false", level + 1)
  end
end

--- nnft.plot.lines{file=, series={{x=, y=, yerr=, label=, style=}, ...}, ...} -> list of files
function M.lines(opts)
  local fname = "nnft.plot.lines"
  if type(opts) ~= "table" then fail(fname, "expected a table of options", 2) end
  nio._check_options(opts, fname, lines_keys, 2)
  common_checks(opts, fname, 2)
  local out = outputs(opts, fname, 2)
  local series = opts.series
  if type(series) ~= "table" or #series == 0 then fail(fname, "series= must be a non-empty list of {x=, y=, ...}", 2) end

  local any_err = false
  local data = {}
  for s, sr in ipairs(series) do
    if type(sr) ~= "table" then fail(fname, ("series[%d] must be a table"):format(s), 2) end
    for k in pairs(sr) do
      if not series_keys[k] then
        fail(fname, ("series[%d]: unknown key '%s' (allowed: x, y, yerr, label, style, color, width)"):format(s, tostring(k)), 2)
      end
    end
    if sr.y == nil then fail(fname, ("series[%d]: y= is required"):format(s), 2) end
    local y = numbers(sr.y, ("series[%d].y"):format(s), fname, 2)
    local x
    if sr.x ~= nil then
      x = numbers(sr.x, ("series[%d].x"):format(s), fname, 2)
    else
      x = {}
      for i = 1, #y do x[i] = i end
    end
    if #x ~= #y then fail(fname, ("series[%d]: x has %d values, y has %d"):format(s, #x, #y), 2) end
    if #y == 0 then fail(fname, ("series[%d] is empty"):format(s), 2) end
    local yerr
    if sr.yerr ~= nil then
      yerr = numbers(sr.yerr, ("series[%d].yerr"):format(s), fname, 2)
      if #yerr ~= #y then fail(fname, ("series[%d]: yerr has %d values, y has %d"):format(s, #yerr, #y), 2) end
      any_err = true
    end
    local style = sr.style or (yerr and "errorbars" or "lines")
    if not styles[style] then
      fail(fname, ("series[%d]: unknown style '%s' (lines, points, linespoints, errorbars)"):format(s, tostring(style)), 2)
    end
    if style == "errorbars" and not yerr then fail(fname, ("series[%d]: style 'errorbars' needs yerr="):format(s), 2) end
    if sr.label ~= nil and type(sr.label) ~= "string" then fail(fname, ("series[%d]: label= must be a string"):format(s), 2) end
    if sr.color ~= nil and type(sr.color) ~= "string" then fail(fname, ("series[%d]: color= must be a string like '#1f77b4' or 'red'"):format(s), 2) end
    if sr.width ~= nil and type(sr.width) ~= "number" then fail(fname, ("series[%d]: width= must be a number"):format(s), 2) end
    data[s] = { x = x, y = y, yerr = yerr, style = style, label = sr.label, color = sr.color, width = sr.width }
  end

  -- the data, long format: one row per point, series numbered 1..n (labels in the header)
  local cs, cx, cy, ce = {}, {}, {}, {}
  local meta = { plot = "nnft.plot.lines" }
  if opts.title then meta.title = tostring(opts.title) end
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
    meta["series " .. s] = d.label or ""
  end
  local cols, names = { cs, cx, cy }, { "series", "x", "y" }
  if any_err then cols[4], names[4] = ce, "yerr" end
  local csvfile = out.stem .. ".csv"
  nio.write_csv(csvfile, cols, { columns = names, meta = meta })
  local skip = 0
  for _ in pairs(meta) do skip = skip + 1 end
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
    if d.color then extra = extra .. " linecolor rgb " .. gpq(d.color) end
    if d.width then extra = extra .. " linewidth " .. C.fmt(d.width) end
    local title = d.label and d.label ~= "" and ("title " .. gpq(d.label)) or "notitle"
    plots[#plots + 1] = ("%s skip %d every ::%d::%d using %s with %s%s %s"):format(gpq(csvname),
      skip, ranges[s][1], ranges[s][2], using, with, extra, title)
  end
  local body = { settings = axes_lines(opts), plot = "plot " .. table.concat(plots, ", \\\n     ") }
  local gp = script(out, csvname, body, "written by nnft.plot.lines")
  local files = render(out, gp, opts, fname, 2)
  table.insert(files, csvfile)
  table.insert(files, out.stem .. ".gp")
  return files
end

local hist_keys = { "file", "data", "bins", "range", "density", "title", "xlabel", "ylabel",
                    "logy", "label", "color", "grid", "key", "size", "formats", "gnuplot" }

--- nnft.plot.hist{file=, data=, bins=, range=, density=, ...} -> list of files, counts table
function M.hist(opts)
  local fname = "nnft.plot.hist"
  if type(opts) ~= "table" then fail(fname, "expected a table of options", 2) end
  nio._check_options(opts, fname, hist_keys, 2)
  common_checks(opts, fname, 2)
  check_bool(opts, "density", fname, 2)
  check_range(opts, "range", fname, 2)
  local out = outputs(opts, fname, 2)
  if opts.data == nil then fail(fname, "data= is required", 2) end
  local x
  if core.mat.ismat(opts.data) then x = opts.data:totable(true)
  else x = numbers(opts.data, "data", fname, 2) end
  local vals, dropped = {}, 0
  for i = 1, #x do
    local v = x[i]
    if v == v and v ~= math.huge and v ~= -math.huge then vals[#vals + 1] = v else dropped = dropped + 1 end
  end
  if #vals == 0 then fail(fname, "data has no finite values", 2) end
  local lo, hi
  if opts.range then
    lo, hi = opts.range[1], opts.range[2]
    if not (lo < hi) then fail(fname, "range= must have lo < hi", 2) end
  else
    lo, hi = math.huge, -math.huge
    for _, v in ipairs(vals) do
      if v < lo then lo = v end
      if v > hi then hi = v end
    end
    if lo == hi then lo, hi = lo - 0.5, hi + 0.5 end
  end
  local bins = opts.bins
  if bins == nil then -- Rice rule, at most 200
    bins = math.max(1, math.min(200, math.ceil(2 * (#vals) ^ (1 / 3))))
  end
  if math.type(bins) ~= "integer" or bins < 1 or bins > 1e6 then
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
      local b = math.floor((v - lo) / width) + 1
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
  if opts.title then meta.title = tostring(opts.title) end
  local csvfile = out.stem .. ".csv"
  nio.write_csv(csvfile, { blo, bhi, bc, cnt, dens },
    { columns = { "lo", "hi", "center", "count", "density" }, meta = meta })
  local skip = 1
  for _ in pairs(meta) do skip = skip + 1 end

  local settings = axes_lines(opts)
  settings[#settings + 1] = "set style fill solid 0.5 border -1"
  if not opts.logy and not opts.yrange then settings[#settings + 1] = "set yrange [0:*]" end
  local ycol = opts.density and "5" or "4"
  local extra = opts.color and (" linecolor rgb " .. gpq(opts.color)) or ""
  if opts.color ~= nil and type(opts.color) ~= "string" then fail(fname, "color= must be a string", 2) end
  if opts.label ~= nil and type(opts.label) ~= "string" then fail(fname, "label= must be a string", 2) end
  local title = opts.label and ("title " .. gpq(opts.label)) or "notitle"
  local csvname = out.base .. ".csv"
  local body = { settings = settings,
                 plot = ("plot %s skip %d using 3:%s:($2-$1) with boxes%s %s"):format(gpq(csvname),
                   skip, ycol, extra, title) }
  local gp = script(out, csvname, body, "written by nnft.plot.hist")
  local files = render(out, gp, opts, fname, 2)
  table.insert(files, csvfile)
  table.insert(files, out.stem .. ".gp")
  return files, { lo = blo, hi = bhi, count = cnt, density = dens }
end

return M
