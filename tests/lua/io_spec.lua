-- nnft.io (CSV, NPY, JSON, atomic writes, SHA-256, runs and manifests), nnft.reproduce and
-- nnft.progress.
local nnft = require "nnft"
local nio = nnft.io

local U = require "spec_util"
local shq, slurp, spit, listdir = U.q, U.slurp, U.spit, U.listdir

-- Is a numpy usable through /usr/bin/python3 (Debian's python3-numpy)?
local python = "/usr/bin/python3"
local function have_numpy()
  local ok = os.execute(python .. " -c 'import numpy' >/dev/null 2>&1")
  return ok == true
end

local data_dir = "tests/data/"
local tmp

setup(function() tmp = nnft._io.mkdtemp("nnft-io-spec-") end)
teardown(function() if tmp then os.execute("rm -rf " .. shq(tmp)) end end)

describe("nnft.io CSV", function()
  it("round-trips a table of columns with metadata, exactly", function()
    local x = { 0.1, 1 / 3, -2.5e-300, 1e300, 0.1 + 0.2, 7 }
    local name = { "a", "b,c", 'say "hi"', " pad ", "", "#x" }
    local path = tmp .. "/cols.csv"
    nio.write_csv(path, { x = x, name = name },
      { columns = { "x", "name" }, meta = { seed = 3, title = "test run", ok = true } })
    local text = slurp(path)
    assert.matches("^# ok: true\n# seed: 3\n# title: test run\nx,name\n0.1,a\n", text)
    local cols, meta, names = nio.read_csv(path)
    assert.are.same({ "x", "name" }, names)
    assert.are.equal(3, meta.seed)
    assert.are.equal("test run", meta.title)
    assert.are.equal(true, meta.ok)
    for i = 1, #x do assert.are.equal(x[i], cols.x[i]) end
    assert.are.same(name, cols.name)
  end)

  it("writes a Mat with NaN and Inf and reads it back (also as a Mat)", function()
    local m = nnft.mat{ { 1, 0 / 0 }, { math.huge, -math.huge }, { 0.25, 1e-17 } }
    local path = tmp .. "/m.csv"
    nio.write_csv(path, m, { columns = { "a", "b" } })
    local cols = nio.read_csv(path)
    assert.are.equal(1, cols.a[1])
    assert.is_true(cols.b[1] ~= cols.b[1])
    assert.are.equal(math.huge, cols.a[2])
    assert.are.equal(-math.huge, cols.b[2])
    assert.are.equal(1e-17, cols.b[3])
    local back, _, names = nio.read_csv(path, { mat = true })
    assert.are.same({ "a", "b" }, names)
    assert.are.equal(3, back:rows())
    assert.are.equal(0.25, back:get(3, 1))
    -- default names c1..cn
    nio.write_csv(path, nnft.mat.zeros(2, 3))
    assert.matches("\nc1,c2,c3\n", "\n" .. slurp(path))
  end)

  it("writes TSV by sep= or by the .tsv extension, and a list of columns", function()
    local path = tmp .. "/t.tsv"
    nio.write_csv(path, { { 1, 2 }, { "u", "v" } }, { columns = { "n", "s" } })
    assert.are.equal("n\ts\n1\tu\n2\tv\n", slurp(path))
    local cols = nio.read_csv(path)
    assert.are.same({ 1, 2 }, cols.n)
    nio.write_csv(tmp .. "/t2.txt", { a = { 1 }, b = { 2 } }, { sep = "\t" })
    assert.are.equal("a\tb\n1\t2\n", slurp(tmp .. "/t2.txt"))
    assert.are.same({ 2 }, (nio.read_csv(tmp .. "/t2.txt", { sep = "\t" })).b)
    -- columns may be vector Mats
    nio.write_csv(tmp .. "/v.csv", { x = nnft.mat{ 1, 2, 3 }, y = { 4, 5, 6 } })
    assert.are.same({ 4, 5, 6 }, (nio.read_csv(tmp .. "/v.csv")).y)
  end)

  it("is readable by numpy (skip the '#' lines, names from the header line)", function()
    if not have_numpy() then
      pending("python3-numpy not available")
      return
    end
    local path = tmp .. "/np.csv"
    nio.write_csv(path, { x = { 0.1, 0.2 }, y = { 1 / 3, 2 } }, { meta = { run = "r1" } })
    local p = io.popen(python .. " -c " .. shq(
      "import numpy as np, sys; a = np.genfromtxt(sys.argv[1], delimiter=',', skip_header=1, "
      .. "names=True); print(repr(float(a['y'][0])), a.dtype.names)") .. " " .. shq(path))
    local out = p:read("a")
    p:close()
    assert.matches("0.3333333333333333 ('x', 'y')", out, 1, true)
  end)

  it("rejects bad input with clear errors and unknown options", function()
    local path = tmp .. "/bad.csv"
    local ok, err = pcall(nio.write_csv, path, { x = { 1, 2 }, y = { 1 } })
    assert.is_false(ok)
    assert.matches("column 'y' has 1 entries", err, 1, true)
    ok, err = pcall(nio.write_csv, path, { x = { 1 } }, { colums = { "x" } })
    assert.is_false(ok)
    assert.matches("unknown option 'colums'", err, 1, true)
    assert.has_error(function() nio.write_csv(path, { x = { {} } }) end)
    assert.has_error(function() nio.write_csv(path, { x = { "a\nb" } }) end)
    assert.has_error(function() nio.write_csv(path, 42) end)
    assert.has_error(function() nio.write_csv(path, nnft.mat.zeros(2, 2), { columns = { "a" } }) end)
    ok, err = pcall(nio.read_csv, tmp .. "/absent.csv")
    assert.is_false(ok)
    assert.matches("absent.csv", err, 1, true)
    spit(path, "a,b\n1,2\n3\n")
    ok, err = pcall(nio.read_csv, path)
    assert.is_false(ok)
    assert.matches("line 3 has 1 fields", err, 1, true)
  end)
end)

describe("nnft.io NPY", function()
  it("round-trips a Mat exactly, views included", function()
    local m = nnft.mat{ { 1, 2, 3 }, { 4, 0 / 0, 6 }, { 1 / 3, -math.huge, 1e-310 } }
    local path = tmp .. "/m.npy"
    nio.write_npy(path, m)
    local back = nio.read_npy(path)
    assert.are.equal(3, back:rows())
    assert.are.equal(3, back:cols())
    for i = 1, 3 do
      for j = 1, 3 do
        local a, b = m:get(i, j), back:get(i, j)
        assert.is_true(a == b or (a ~= a and b ~= b))
      end
    end
    local v = m:block(2, 2, 2, 2)
    nio.write_npy(path, v)
    back = nio.read_npy(path)
    assert.are.equal(6, back:get(1, 2))
    assert.are.equal(1e-310, back:get(2, 2))
    nio.write_npy(path, { 1, 2, 3 })
    assert.are.equal(3, nio.read_npy(path):rows())
  end)

  it("reads files written by numpy in C and Fortran order, and 1-D", function()
    local want = { { -0.5, -0.375, -0.25, -0.125 }, { 0.0, 0.125, math.pi, 0.375 },
                   { 0.5, 0.625, 0.75, 0.875 } }
    for _, f in ipairs({ "io_numpy_c.npy", "io_numpy_f.npy" }) do
      local m = nio.read_npy(data_dir .. f)
      assert.are.equal(3, m:rows())
      assert.are.equal(4, m:cols())
      assert.are.same(want, m:totable())
    end
    local v = nio.read_npy(data_dir .. "io_numpy_1d.npy")
    assert.are.same({ 4, 1 }, { v:rows(), v:cols() })
    assert.are.equal(1e-300, v:get(3, 1))
  end)

  it("writes files numpy reads", function()
    if not have_numpy() then
      pending("python3-numpy not available")
      return
    end
    local path = tmp .. "/for_numpy.npy"
    nio.write_npy(path, nnft.mat{ { 1, 2, 3 }, { 4, 5, 6.5 } })
    local p = io.popen(python .. " -c " .. shq("import numpy as np, sys; a = np.load(sys.argv[1]); "
      .. "print(a.shape, a.dtype, a[1, 2], a.flags['F_CONTIGUOUS'])") .. " " .. shq(path))
    local out = p:read("a")
    p:close()
    assert.matches("(2, 3) float64 6.5 True", out, 1, true)
  end)

  it("rejects truncated, corrupt and non-float64 files clearly", function()
    local cases = {
      { "io_numpy_truncated.npy", "truncated" },
      { "io_numpy_f4.npy", "'<f4' is not float64" },
      { "io_numpy_i8.npy", "'<i8' is not float64" },
      { "io_numpy_3d.npy", "3 dimensions" },
      { "io_tiny_recipe.lua", "not an NPY file" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(nio.read_npy, data_dir .. c[1])
      assert.is_false(ok)
      assert.matches("nnft.io.read_npy", err, 1, true)
      assert.matches(c[1], err, 1, true)
      assert.matches(c[2], err, 1, true)
    end
    local ok, err = pcall(nio.read_npy, tmp .. "/none.npy")
    assert.is_false(ok)
    assert.matches("No such file or directory", err, 1, true)
    -- a header cut short
    local full = slurp(data_dir .. "io_numpy_c.npy")
    spit(tmp .. "/cut.npy", full:sub(1, 40))
    ok, err = pcall(nio.read_npy, tmp .. "/cut.npy")
    assert.is_false(ok)
    assert.matches("truncated", err)
    assert.has_error(function() nio.write_npy(tmp .. "/x.npy", "not a matrix") end)
  end)
end)

describe("nnft.io JSON", function()
  it("round-trips nested tables with exact numbers and sorted keys", function()
    local v = { a = 1, b = { 0.1 + 0.2, 1 / 3, -5 }, c = "sl/ash \"q\" \n", d = { x = true, y = false },
                e = nio.null, f = nio.json_array(), g = {} }
    local path = tmp .. "/v.json"
    nio.write_json(path, v)
    local text = slurp(path)
    assert.matches('^{\n  "a": 1,\n  "b": %[', text)
    assert.matches('"c": "sl/ash \\"q\\" \\n"', text, 1, true)
    assert.matches('"f": []', text, 1, true)
    local back = nio.read_json(path)
    assert.are.equal(1, back.a)
    assert.are.equal("integer", math.type(back.a))
    assert.are.equal(0.1 + 0.2, back.b[1])
    assert.are.equal(1 / 3, back.b[2])
    assert.are.equal(v.c, back.c)
    assert.are.same({ x = true, y = false }, back.d)
    assert.are.equal(nio.null, back.e)
    nio.write_json(path, { 1, 2 }, { indent = 0 })
    assert.are.equal("[1,2]\n", slurp(path))
    assert.are.equal('{"m":[[1,2],[3,4]]}', nio.json_encode({ m = nnft.mat{ { 1, 2 }, { 3, 4 } } }))
  end)

  it("refuses NaN, functions and mixed tables, and reports bad JSON", function()
    local ok, err = pcall(nio.write_json, tmp .. "/n.json", { x = { 1, 0 / 0 } })
    assert.is_false(ok)
    assert.matches("$.x[2]", err, 1, true)
    assert.has_error(function() nio.write_json(tmp .. "/n.json", { f = print }) end)
    assert.has_error(function() nio.write_json(tmp .. "/n.json", { 1, x = 2 }) end)
    assert.has_error(function() nio.write_json(tmp .. "/n.json", {}, { pretty = true }) end)
    spit(tmp .. "/bad.json", "{ not json")
    ok, err = pcall(nio.read_json, tmp .. "/bad.json")
    assert.is_false(ok)
    assert.matches("bad.json' is not valid JSON", err, 1, true)
  end)
end)

describe("nnft.io atomic writes", function()
  it("leaves the old file intact and no temporary file when a write fails", function()
    local dir = tmp .. "/atomic"
    nio.mkdir(dir)
    local path = dir .. "/keep.csv"
    nio.write_csv(path, { x = { 1, 2 } })
    local before = slurp(path)
    -- failing while the data are formatted: nothing touches the disk
    assert.has_error(function() nio.write_csv(path, { x = { 1, 2 }, y = { 1 } }) end)
    assert.has_error(function() nio.write_json(path, { 0 / 0 }) end)
    assert.are.equal(before, slurp(path))
    -- the target is a directory: rename fails; the error names the path and errno text
    nio.mkdir(dir .. "/sub.csv")
    spit(dir .. "/sub.csv/inner", "x")
    for _, write in ipairs({
      function(p) nio.write_csv(p, { x = { 1 } }) end,
      function(p) nio.write_npy(p, nnft.mat{ 1 }) end,
      function(p) nio.write_json(p, { 1 }) end,
      function(p) nio.write_text(p, "t") end,
    }) do
      local ok, err = pcall(write, dir .. "/sub.csv")
      assert.is_false(ok)
      assert.matches("cannot write '" .. dir .. "/sub.csv': ", err, 1, true)
      assert.matches("Is a directory", err, 1, true)
    end
    assert.are.equal("x", slurp(dir .. "/sub.csv/inner"))
    -- the directory does not exist
    local ok, err = pcall(nio.write_csv, dir .. "/nope/x.csv", { x = { 1 } })
    assert.is_false(ok)
    assert.matches("No such file or directory", err, 1, true)
    -- no temporary files left behind
    table.sort(listdir(dir))
    assert.are.same({ "keep.csv", "sub.csv" }, (function() local l = listdir(dir) table.sort(l) return l end)())
    assert.are.equal(before, slurp(path))
  end)

  it("refuses to write into a read-only directory (unless running as root)", function()
    local dir = tmp .. "/ro"
    nio.mkdir(dir)
    nio.write_text(dir .. "/f.txt", "old")
    os.execute("chmod 555 " .. shq(dir))
    local ok, err = pcall(nio.write_text, dir .. "/f.txt", "new")
    os.execute("chmod 755 " .. shq(dir))
    if ok then
      pending("running as root: permissions are not enforced")
      return
    end
    assert.matches("Permission denied", err, 1, true)
    assert.are.equal("old", slurp(dir .. "/f.txt"))
  end)
end)

describe("nnft.io.sha256", function()
  it("matches known digests", function()
    assert.are.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      nio.sha256_string("abc"))
    assert.are.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      nio.sha256_string(""))
    assert.are.equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      nio.sha256_string("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
    spit(tmp .. "/abc", "abc")
    assert.are.equal(nio.sha256_string("abc"), nio.sha256(tmp .. "/abc"))
    local big = ("0123456789"):rep(100000)
    spit(tmp .. "/big", big)
    assert.are.equal(nio.sha256_string(big), nio.sha256(tmp .. "/big"))
    assert.has_error(function() nio.sha256(tmp .. "/none") end)
  end)
end)

describe("nnft.io.run and manifests", function()
  it("creates out=, records outputs with their sha256 and writes manifest.json", function()
    local out = tmp .. "/runs/a/b/"
    local run = nio.run{ out = out, args = { width = 3, widths = { 1, 2 } }, seed = 42,
                         name = "spec", meta = { note = "x" } }
    assert.are.equal("directory", (nnft._io.stat(out)))
    local p = run:path("data.csv")
    assert.are.equal(tmp .. "/runs/a/b/data.csv", p)
    nio.write_csv(p, { x = { 1, 2, 3 } })
    nio.write_npy(run:path("sub/m.npy"), nnft.mat{ 1, 2 })
    nio.write_json(out .. "extra.json", { a = 1 }) -- not via run:path, but inside out=
    nio.write_text(tmp .. "/elsewhere.txt", "not an output")
    local f = assert(io.open(run:path("raw.txt"), "w")) -- written by other means
    f:write("raw")
    f:close()
    run:path("never-written.txt")
    assert.matches("nnft.io.Run%(spec", tostring(run))
    local man, mpath = run:finish()
    assert.are.equal(tmp .. "/runs/a/b/manifest.json", mpath)
    local m = nio.read_json(mpath)
    assert.are.equal("nnft-manifest/1", m.format)
    assert.are.equal("spec", m.name)
    local info = nnft.sys.info()
    assert.are.equal(info.version, m.nnft.version)
    assert.are.equal(info.git, m.nnft.git)
    assert.are.equal(info.lua, m.lua)
    assert.are.equal(info.blas, m.blas)
    assert.are.equal(info.gsl, m.gsl)
    assert.are.equal(info.threads, m.threads)
    assert.are.equal(42, m.seed)
    assert.are.same({ width = 3, widths = { 1, 2 } }, m.args)
    assert.are.same({ note = "x" }, m.meta)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", m.start)
    assert.is_true(m.wall_seconds >= 0)
    assert.are.equal("string", type(m.host))
    assert.are.equal("string", type(m.cwd))
    assert.is_true(m.recipe == nio.null or m.recipe:sub(1, 1) == "/")
    local files = {}
    for _, o in ipairs(m.outputs) do files[o.file] = o end
    assert.are.same({ "data.csv", "sub/m.npy", "extra.json", "raw.txt" },
      (function() local l = {} for i, o in ipairs(m.outputs) do l[i] = o.file end return l end)())
    for name, o in pairs(files) do
      assert.are.equal(nio.sha256(out .. name), o.sha256)
      assert.are.equal(#slurp(out .. name), o.bytes)
    end
    assert.are.same(man.outputs[1].sha256, m.outputs[1].sha256)
    assert.are.same({ "data.csv", "sub/m.npy", "extra.json", "raw.txt", "never-written.txt" },
      run:outputs())
    assert.has_error(function() run:finish() end)
  end)

  it("records the specs of the networks and kernels behind the outputs, once each", function()
    local run = nio.run{ out = tmp .. "/runs/specs" }
    local arch = nnft.mlp{ d_in = 2, width = 4, depth = 1, act = "erf" }
    run:record_spec(arch):record_spec(arch):record_spec(arch:kernel(), "nngp")
    assert.has_error(function() run:record_spec({}) end,
      "nnft.io.Run:record_spec: expected an object with a spec() method (an nnft.Arch, nnft.Kernel, ...)")
    local m = run:finish()
    local back = nio.read_json(tmp .. "/runs/specs/manifest.json")
    assert.are.equal(2, #back.specs)
    assert.are.equal(tostring(arch), back.specs[1].text)
    assert.are.equal(4, back.specs[1].spec.width)
    assert.are.equal("nngp", back.specs[2].label)
    assert.are.equal("table", type(back.specs[2].spec.arch)) -- the nested Arch as its own spec
    assert.are.equal(4, back.specs[2].spec.arch.width)
    assert.are.equal(#m.specs, #back.specs)
  end)

  it("checks its options and paths", function()
    assert.has_error(function() nio.run{} end)
    assert.has_error(function() nio.run{ out = tmp .. "/r", sede = 1 } end)
    assert.has_error(function() nio.run{ out = tmp .. "/r", seed = "x" } end)
    local run = nio.run{ out = tmp .. "/r" }
    assert.has_error(function() run:path("../x.csv") end)
    assert.has_error(function() run:path("/abs.csv") end)
    assert.has_error(function() run:path("manifest.json") end)
    assert.has_error(function() run:record("/somewhere/else") end)
    spit(tmp .. "/file", "x")
    local ok, err = pcall(nio.run, { out = tmp .. "/file/sub" })
    assert.is_false(ok)
    assert.matches("Not a directory", err, 1, true)
    run:finish()
    assert.are.same({}, nio.read_json(tmp .. "/r/manifest.json").outputs)
  end)

  it("finishes on scope exit with <close>", function()
    do
      local run <close> = nio.run{ out = tmp .. "/closed" }
      nio.write_text(run:path("t.txt"), "t")
    end
    local m = nio.read_json(tmp .. "/closed/manifest.json")
    assert.are.equal("t.txt", m.outputs[1].file)
  end)
end)

describe("nnft.reproduce", function()
  it("re-runs a recipe and compares its outputs", function()
    local bin = os.getenv("NNFT_BIN")
    if not bin then
      pending("NNFT_BIN is not set")
      return
    end
    local out = tmp .. "/tiny"
    local ok = os.execute(shq(bin) .. " " .. data_dir .. "io_tiny_recipe.lua n=4 scale=0.25 out="
      .. shq(out) .. " >/dev/null 2>&1")
    assert.is_true(ok)
    local mpath = out .. "/manifest.json"
    local m = nio.read_json(mpath)
    assert.are.equal(4, m.args.n)
    assert.are.equal(0.25, m.args.scale)
    assert.are.same({ "n=4", "scale=0.25", "out=" .. out }, m.argv)
    assert.matches("io_tiny_recipe.lua$", m.recipe)
    assert.are.equal(2, #m.outputs)

    local same, report = nnft.reproduce.run(mpath, { interpreter = bin, quiet = true })
    assert.is_true(same)
    assert.are.equal("identical", report.files[1].status)
    assert.are.equal("identical", report.files[2].status)

    -- a recorded checksum that no longer matches, and an output that is not produced
    m.outputs[1].sha256 = ("0"):rep(64)
    m.outputs[3] = { file = "gone.csv", sha256 = ("1"):rep(64) }
    nio.write_json(mpath, m)
    same, report = nnft.reproduce.run(mpath, { interpreter = bin, quiet = true })
    assert.is_false(same)
    assert.are.equal("DIFFERS", report.files[1].status)
    assert.are.equal("identical", report.files[2].status)
    assert.are.equal("missing", report.files[3].status)
    os.execute("rm -rf " .. shq(report.dir))

    assert.are.same({ "label=sin", "n=4", "scale=0.25", "out=/x" }, nnft.reproduce.arguments(m, "/x"))
    assert.has_error(function() nnft.reproduce.run(mpath, { interp = bin }) end)
    spit(tmp .. "/notman.json", '{"a": 1}')
    assert.has_error(function() nnft.reproduce.run(tmp .. "/notman.json", { quiet = true }) end)
  end)
end)

describe("nnft.progress", function()
  local function sink()
    local s = { text = {} }
    function s:write(...) for _, x in ipairs({ ... }) do self.text[#self.text + 1] = x end end
    function s:flush() end
    return s
  end

  it("formats count, percentage, rate and ETA", function()
    local t = nnft.progress.format("work", 25, 100, 5)
    assert.matches("^work %[########%.+%]  25%% 25/100 5/s ETA 00:15$", t)
    assert.matches("in 00:20", nnft.progress.format(nil, 100, 100, 20))
    assert.matches("12.0k 12.0k/s 00:01", nnft.progress.format(nil, 12000, nil, 1), 1, true)
  end)

  it("draws on an enabled stream and is silent otherwise", function()
    local s = sink()
    local bar = nnft.progress.new(10, { stream = s, enabled = true, interval = 0 })
    for i = 1, 10 do bar:update(i) end
    bar:finish()
    local text = table.concat(s.text)
    assert.matches("\r", text, 1, true)
    assert.matches("100%", text, 1, true)
    assert.matches("\n$", text)
    local quiet = sink()
    bar = nnft.progress.new(10, { stream = quiet }) -- not stderr: disabled by default
    for i = 1, 10 do bar:tick() end
    bar:finish()
    assert.are.same({}, quiet.text)
    local n = 0
    for i in nnft.progress.range(5, { stream = quiet }) do n = n + i end
    assert.are.equal(15, n)
    assert.has_error(function() nnft.progress.new(10, { lable = "x" }) end)
  end)

  it("writes nothing when stderr is not a terminal", function()
    local bin = os.getenv("NNFT_BIN")
    if not bin then
      pending("NNFT_BIN is not set")
      return
    end
    local err = tmp .. "/stderr.txt"
    local ok = os.execute(shq(bin) .. " -e " .. shq(
      "local b = require('nnft').progress.new(1000, {interval = 0}) "
      .. "for i = 1, 1000 do b:update(i) end b:finish()") .. " 2>" .. shq(err))
    assert.is_true(ok)
    assert.are.equal("", slurp(err))
  end)
end)
