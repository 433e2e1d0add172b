--- nnft.rg: Wilsonian RG of (NN)GP regression [HJMR] (physics.md §6, docs/api/rg.md,
-- docs/wilsonian.md). Options are checked here (unknown keys are errors) and Modes are unpacked;
-- every numerical loop is in C (nnft._rg, src/core/nnft_wilson.c).
--
-- A "modes" argument is anything with a spectrum and (where needed) eigenfunctions on the
-- training points: the Modes of nnft.mercer (fields or methods `values`/`lambda` and `phi`), a
-- table {lambda = Mat, phi = Mat}, or, where only the spectrum is needed, a K x 1 Mat.
local core = require "nnft.core"
local C = core._rg
local ismat = core.mat and core.mat.ismat

local M = {}

local function is_mat(x)
  if ismat then return ismat(x) end
  return type(x) == "userdata"
end

local function check_opts(fname, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("%s: options must be a table, got %s"):format(fname, type(opts)), 3)
  end
  for k in pairs(opts) do
    if not allowed[k] then
      local names = {}
      for a in pairs(allowed) do names[#names + 1] = a end
      table.sort(names)
      error(("%s: unknown option '%s' (allowed: %s)"):format(fname, tostring(k),
        table.concat(names, ", ")), 3)
    end
  end
  return opts
end

local function set(...)
  local s = {}
  for _, k in ipairs{...} do s[k] = true end
  return s
end

-- Field or method `name` of a Modes-like object (nil if absent).
local function get(obj, name)
  local ok, v = pcall(function() return obj[name] end)
  if not ok then return nil end
  if type(v) == "function" then v = v(obj) end
  return v
end

-- lambda, phi (phi may be nil unless need_phi) of a Modes-like argument.
local function unpack(fname, modes, need_phi)
  if is_mat(modes) then
    if need_phi then
      error(("%s: expected Modes (nnft.mercer) or {lambda=, phi=}; a Mat alone is only a "
        .. "spectrum"):format(fname), 3)
    end
    return modes, nil
  end
  local t = type(modes)
  if t ~= "table" and t ~= "userdata" then
    error(("%s: expected Modes (nnft.mercer), a table {lambda=, phi=} or a spectrum Mat, got %s")
      :format(fname, t), 3)
  end
  local lam = get(modes, "lambda") or get(modes, "values")
  local phi = get(modes, "phi")
  if not is_mat(lam) then
    error(("%s: the modes have no spectrum (a Mat field 'lambda' or 'values')"):format(fname), 3)
  end
  if need_phi and not is_mat(phi) then
    error(("%s: the modes have no eigenfunctions on the training points (a Mat field 'phi')")
      :format(fname), 3)
  end
  return lam, phi
end

local function number(fname, opts, key, def, required)
  local v = opts[key]
  if v == nil then
    if required then error(("%s: option %s= is required"):format(fname, key), 3) end
    return def
  end
  if type(v) ~= "number" then
    error(("%s: option %s= must be a number, got %s"):format(fname, key, type(v)), 3)
  end
  return v
end

-- Target coefficients from y= (values at the training points) or yk= (coefficients).
local function targets(fname, opts, lam, phi, required)
  if opts.y ~= nil and opts.yk ~= nil then
    error(("%s: give y= (targets at the points) or yk= (mode coefficients), not both")
      :format(fname), 3)
  end
  if opts.yk ~= nil then
    if not is_mat(opts.yk) then error(("%s: yk= must be a Mat"):format(fname), 3) end
    return opts.yk
  end
  if opts.y ~= nil then
    if not is_mat(opts.y) then error(("%s: y= must be a Mat (n x 1)"):format(fname), 3) end
    if not phi then
      error(("%s: y= needs the modes' eigenfunctions phi to project on"):format(fname), 3)
    end
    return C.targets(fname, phi, opts.y)
  end
  if required then
    error(("%s: the targets are required: y= (n x 1) or yk= (K x 1)"):format(fname), 3)
  end
  return nil
end

-- Dataset size: opts.n, else the number of training points of phi.
local function eta_of(fname, opts, phi)
  if opts.n ~= nil then return number(fname, opts, "n") end
  if phi then return phi:rows() end
  error(("%s: option n= (the dataset size eta) is required when the modes carry no points")
    :format(fname), 3)
end

local function check_include_target(fname, opts)
  local inc = opts.include_target
  if inc ~= nil and type(inc) ~= "boolean" then
    error(("%s: include_target= must be a boolean, got %s"):format(fname, type(inc)), 3)
  end
  return inc
end

local function kappa_list(v)
  if v == nil then return nil end
  if type(v) == "number" then return {v} end
  return v
end

--- Mode analysis (equivalent kernel).
function M.modes(modes, opts)
  local fname = "nnft.rg.modes"
  opts = check_opts(fname, opts, set("noise", "n", "y", "yk"))
  local lam, phi = unpack(fname, modes, false)
  local noise = number(fname, opts, "noise", nil, true)
  local eta = eta_of(fname, opts, phi)
  local yk = targets(fname, opts, lam, phi, false)
  local learn, var, fbar, bias2, tot = C.ek(fname, lam, yk, noise, eta)
  return { lambda = lam, yk = yk, learn = learn, fbar = fbar, bias2 = bias2, var = var,
           total = tot, noise = noise, n = eta }
end

--- The ridge flow.
function M.wilson(modes, opts)
  local fname = "nnft.rg.wilson"
  opts = check_opts(fname, opts, set("noise", "n", "y", "yk", "include_target", "threshold",
    "kappa"))
  local lam, phi = unpack(fname, modes, false)
  local noise = number(fname, opts, "noise", nil, true)
  local eta = eta_of(fname, opts, phi)
  local T = number(fname, opts, "threshold", 0.5)
  local inc = check_include_target(fname, opts)
  local yk = targets(fname, opts, lam, phi, inc)
  local tail, ttail, ridge, learn = C.flow(fname, lam, yk, noise, eta, inc)
  local stop = C.stop(fname, lam, yk, noise, eta, inc, T):get(1, 1)
  local flow = { lambda = lam, tail = tail, target_tail = ttail, ridge = ridge, learn = learn,
                 stop = math.tointeger(stop), threshold = T, noise = noise, n = eta,
                 include_target = inc or false, K = lam:rows() }
  local ks = kappa_list(opts.kappa)
  if ks then
    if not phi then
      error(("%s: kappa= asks for the input-dependent ridge, which needs the modes' phi")
        :format(fname), 2)
    end
    flow.kappa = ks
    flow["local"] = C.local_ridge(fname, lam, phi, noise, ks)
  end
  return flow
end

--- Stopping point(s) as a function of the dataset size.
function M.stop(modes, opts)
  local fname = "nnft.rg.stop"
  opts = check_opts(fname, opts, set("noise", "n", "y", "yk", "include_target", "threshold"))
  local lam, phi = unpack(fname, modes, false)
  local noise = number(fname, opts, "noise", nil, true)
  local T = number(fname, opts, "threshold", 0.5)
  local n = opts.n
  if n == nil then error(("%s: option n= (a dataset size or a list of them) is required")
    :format(fname), 2) end
  check_include_target(fname, opts)
  local yk = targets(fname, opts, lam, phi, opts.include_target)
  local out = C.stop(fname, lam, yk, noise, n, opts.include_target, T)
  if type(n) == "number" then return math.tointeger(out:get(1, 1)) end
  return out
end

--- Input-dependent ridge σ²(x; κ).
function M.local_ridge(modes, opts)
  local fname = "nnft.rg.local_ridge"
  opts = check_opts(fname, opts, set("noise", "kappa", "phi"))
  local lam, phi = unpack(fname, modes, opts.phi == nil)
  local noise = number(fname, opts, "noise", nil, true)
  local p = opts.phi or phi
  if not is_mat(p) then error(("%s: phi= must be a Mat (points x modes)"):format(fname), 2) end
  return C.local_ridge(fname, lam, p, noise, kappa_list(opts.kappa))
end

--- Reduced GP (modes k <= κ) predictions.
function M.reduced(modes, opts)
  local fname = "nnft.rg.reduced"
  opts = check_opts(fname, opts, set("noise", "kappa", "phi", "phi_train", "y", "yk", "ridge",
    "include_target"))
  check_include_target(fname, opts)
  local ridge = opts.ridge or "flow"
  if ridge ~= "flow" and ridge ~= "bare" and ridge ~= "local" then
    error(("%s: ridge= must be 'flow', 'bare' or 'local', got %s"):format(fname,
      tostring(ridge)), 2)
  end
  local lam, phi = unpack(fname, modes, opts.phi_train == nil)
  local noise = number(fname, opts, "noise", nil, true)
  local ks = kappa_list(opts.kappa)
  if ks == nil then error(("%s: option kappa= (a cutoff or a list) is required"):format(fname), 2) end
  local K = lam:rows()
  for j = 1, #ks do
    local k = ks[j]
    if type(k) ~= "number" or k < 1 or k > K or k ~= math.floor(k) then
      error(("%s: the cutoff kappa must be an integer between 1 and K = %d, got %s")
        :format(fname, K, tostring(k)), 2)
    end
  end
  local ptrain = opts.phi_train
  if ptrain ~= nil and not is_mat(ptrain) then
    error(("%s: phi_train= must be a Mat (training points x modes)"):format(fname), 2)
  end
  local pt = opts.phi or ptrain or phi
  if not is_mat(pt) then error(("%s: phi= must be a Mat (points x modes)"):format(fname), 2) end
  if opts.include_target and ridge ~= "flow" then
    error(("%s: include_target is defined for ridge='flow' only"):format(fname), 2)
  end
  if ridge == "local" or ptrain then
    -- general path: a κ x κ weighted solve per cutoff on the training points' mode values
    local ptr = ptrain or phi
    if opts.y == nil then
      error(("%s: %s needs the targets at the training points (y=)"):format(fname,
        ptrain and "phi_train=" or "ridge='local'"), 2)
    end
    local d
    local yk
    if ridge == "local" then
      d = C.local_ridge(fname, lam, ptr, noise, ks)
    elseif ridge == "flow" then
      if opts.include_target then
        if opts.yk == nil then
          error(("%s: include_target with phi_train= needs yk= (the target coefficients on the "
            .. "measure)"):format(fname), 2)
        end
        yk = opts.yk
      end
    end
    local _, _, r = C.flow(fname, lam, yk, noise, ptr:rows(), yk ~= nil)
    local cols = {}
    for j = 1, #ks do
      local dj
      if ridge == "local" then
        dj = d:col(j)
      else
        dj = core.mat.ones(ptr:rows(), 1) * (ridge == "bare" and noise or r:get(ks[j], 1))
      end
      cols[j] = C.reduced_weighted(fname, lam, ptr, opts.y, dj, pt, ks[j])
    end
    return core.mat.hcat(table.unpack(cols))
  end
  local yk = targets(fname, opts, lam, phi, true)
  local n = phi:rows()
  local rid = {}
  if ridge == "bare" then
    for j = 1, #ks do rid[j] = noise end
  else
    local _, _, r = C.flow(fname, lam, yk, noise, n, opts.include_target)
    for j = 1, #ks do rid[j] = r:get(ks[j], 1) end
  end
  return C.reduced(fname, lam, yk, n, pt, ks, rid)
end

--- Per-mode Gaussianity.
function M.gaussianity(modes)
  local fname = "nnft.rg.gaussianity"
  local phi = is_mat(modes) and modes or select(2, unpack(fname, modes, true))
  local k, t = C.gaussianity(fname, phi)
  return { kurtosis = k, tail = t }
end

--- Joint histogram of two modes.
function M.hist2d(modes, k, l, opts)
  local fname = "nnft.rg.hist2d"
  opts = check_opts(fname, opts, set("bins", "range"))
  local phi = is_mat(modes) and modes or select(2, unpack(fname, modes, true))
  local bins = math.tointeger(number(fname, opts, "bins", 20))
  if not bins then error(("%s: bins= must be an integer"):format(fname), 2) end
  local r = number(fname, opts, "range", 4)
  if not (r > 0) then error(("%s: range= must be > 0, got %g"):format(fname, r), 2) end
  if math.type(k) ~= "integer" or math.type(l) ~= "integer" then
    error(("%s: the mode indices k, l must be integers"):format(fname), 2)
  end
  return C.hist2d(fname, phi, k, l, -r, r, bins)
end

--- Power-law fit of the spectrum.
function M.fit_power(modes, opts)
  local fname = "nnft.rg.fit_power"
  opts = check_opts(fname, opts, set("kmin", "kmax"))
  local lam = unpack(fname, modes, false)
  local kmin = number(fname, opts, "kmin", 1)
  local kmax = number(fname, opts, "kmax", lam:rows())
  if math.tointeger(kmin) == nil or math.tointeger(kmax) == nil then
    error(("%s: kmin= and kmax= must be integers"):format(fname), 2)
  end
  local alpha, logc, r2 = C.fit_power(fname, lam, math.tointeger(kmin), math.tointeger(kmax))
  return { alpha = alpha, logc = logc, r2 = r2, exponent = alpha / (1 + alpha),
           kmin = math.tointeger(kmin), kmax = math.tointeger(kmax) }
end

--- Measured learning curve: GP test MSE against the training-set size.
function M.learning_curve(K, y, opts)
  local fname = "nnft.rg.learning_curve"
  opts = check_opts(fname, opts, set("sizes", "noise", "test"))
  if not is_mat(K) or K:rows() ~= K:cols() then
    error(("%s: K must be a square kernel matrix (N x N) of the (shuffled) points"):format(fname), 2)
  end
  local N = K:rows()
  if not is_mat(y) or y:rows() ~= N then
    error(("%s: y must be a Mat with one row per point of K (%d), got %s"):format(fname, N,
      is_mat(y) and (y:rows() .. " x " .. y:cols()) or type(y)), 2)
  end
  local noise = number(fname, opts, "noise", nil, true)
  if not (noise >= 0) then error(("%s: noise= must be >= 0, got %g"):format(fname, noise), 2) end
  local T = math.tointeger(number(fname, opts, "test", nil, true))
  if not T or T < 1 or T >= N then
    error(("%s: test= must be an integer between 1 and N - 1 = %d"):format(fname, N - 1), 2)
  end
  local sizes = opts.sizes
  if type(sizes) ~= "table" or #sizes == 0 then
    error(("%s: sizes= must be a non-empty list of training-set sizes"):format(fname), 2)
  end
  local smax = 0
  for _, n in ipairs(sizes) do
    if math.type(n) ~= "integer" or n < 1 or n > N - T then
      error(("%s: training sizes must be integers between 1 and N - test = %d, got %s")
        :format(fname, N - T, tostring(n)), 2)
    end
    if n > smax then smax = n end
  end
  -- The training sets are nested (the first n points), so the Cholesky factor of K_n + σ²I is
  -- the leading n x n block of the factor for the largest n: one factorisation for all sizes.
  local linalg = core.linalg
  local A = K:block(1, 1, smax, smax):copy() -- K + σ² I, the ridge added on the diagonal
  for i = 1, smax do A:set(i, i, A:get(i, i) + noise) end
  local ok, L = pcall(linalg.chol, A)
  if not ok then
    error(("%s: K + noise I on the first %d points: %s"):format(fname, smax,
      (tostring(L):gsub("; try {jitter=true}", ""))), 2)
  end
  A = nil
  local yt = y:block(N - T + 1, 1, T, y:cols())
  local ns, mses = {}, {}
  for j, n in ipairs(sizes) do
    local alpha = linalg.cholsolve(L:block(1, 1, n, n), y:block(1, 1, n, y:cols()))
    local pred = K:block(N - T + 1, 1, T, n) * alpha
    local r = pred - yt
    ns[j] = n
    mses[j] = r:emul(r):sum() / (T * y:cols())
  end
  return { n = core.mat(ns), mse = core.mat(mses) }
end

return M
