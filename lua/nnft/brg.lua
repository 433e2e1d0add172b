--- nnft.brg: the Bayesian-RG flows of physics.md §7.3–§7.5 as library functions (docs/api/brg.md,
-- guide docs/brg.md). Options are checked here (unknown keys are errors); the numerical work is in
-- the C primitives it composes: Mat products (BLAS), nnft.mercer Modes (extend, project),
-- nnft.fisher and nnft.shell.schedule. The Lua loops are over cutoffs, members and modes (O(m) per
-- cutoff), never over the O(n m) or O(P) work.
local core = require "nnft.core"
local mat = core.mat

local M = {}

local function is_mat(x)
  if mat and mat.ismat then return mat.ismat(x) end
  return type(x) == "userdata"
end

local function set(...)
  local s = {}
  for _, k in ipairs{...} do s[k] = true end
  return s
end

-- opts checked against the allowed keys; errors point at the caller of the public function.
local function check_opts(fname, opts, allowed, required)
  if opts == nil then opts = {} end
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
  for _, k in ipairs(required or {}) do
    if opts[k] == nil then error(("%s: option '%s' is required"):format(fname, k), 3) end
  end
  return opts
end

local function finite(x) return type(x) == "number" and x == x and x ~= math.huge and x ~= -math.huge end

local function need_number(fname, name, v, lo_excl, lo_incl)
  if not finite(v) then
    error(("%s: %s must be a finite number, got %s"):format(fname, name, tostring(v)), 3)
  end
  if lo_excl ~= nil and not (v > lo_excl) then
    error(("%s: %s must be > %g, got %.17g"):format(fname, name, lo_excl, v), 3)
  end
  if lo_incl ~= nil and not (v >= lo_incl) then
    error(("%s: %s must be >= %g, got %.17g"):format(fname, name, lo_incl, v), 3)
  end
  return v
end

-- A list of cutoffs: non-empty, each finite and >= 0; ascending when `ascending`.
local function check_cutoffs(fname, cutoffs, ascending)
  if type(cutoffs) ~= "table" or #cutoffs == 0 then
    error(("%s: cutoffs must be a non-empty list of numbers"):format(fname), 3)
  end
  for j, L in ipairs(cutoffs) do
    if not finite(L) then
      error(("%s: cutoff %d is %s (must be a finite number >= 0)"):format(fname, j, tostring(L)), 3)
    end
    if L < 0 then
      error(("%s: cutoff %d is Λ = %g < 0 (Λ must be >= 0)"):format(fname, j, L), 3)
    end
    if ascending and j > 1 and L < cutoffs[j - 1] then
      error(("%s: cutoffs must be ascending (cumulative schedule): cutoff %d = %g < cutoff %d = %g")
        :format(fname, j, L, j - 1, cutoffs[j - 1]), 3)
    end
  end
end

-- ------------------------------------------------------------------------------------------------
-- §7.3: infinite width, BRG = truncation of the kernel spectrum
-- ------------------------------------------------------------------------------------------------

function M.infinite_width(modes, y, opts)
  local fname = "nnft.brg.infinite_width"
  opts = check_opts(fname, opts, set("T", "sigma", "cutoffs", "reset", "at", "phi_at", "cov"),
                    { "cutoffs" })
  local tm = type(modes)
  if (tm ~= "userdata" and tm ~= "table") or is_mat(modes) then
    error(fname .. ": modes must be Modes (nnft.mercer or nnft.mercer_matrix)", 2)
  end
  local ok, n, m = pcall(function() return modes:size() end)
  if not ok then error(fname .. ": modes must be Modes (nnft.mercer or nnft.mercer_matrix)", 2) end
  if not is_mat(y) then error(fname .. ": y must be a Mat (n x c targets at the modes' points)", 2) end
  if y:rows() ~= n then
    error(("%s: y has %d rows but the modes are on %d points"):format(fname, y:rows(), n), 2)
  end
  check_cutoffs(fname, opts.cutoffs, false)
  local T = opts.T == nil and n or need_number(fname, "T", opts.T, 0)
  local sigma = opts.sigma == nil and 1 or need_number(fname, "sigma", opts.sigma, 0)
  local reset = opts.reset == nil and "prior" or opts.reset
  if reset ~= "prior" and reset ~= "drop" then
    error(("%s: reset must be \"prior\" or \"drop\", got %s"):format(fname, tostring(reset)), 2)
  end
  if opts.at ~= nil and opts.phi_at ~= nil then error(fname .. ": give at= or phi_at=, not both", 2) end
  local want_cov = opts.cov and true or false
  local s2 = sigma ^ 2
  local c = y:cols()

  local kap_m = modes:values()
  local kappa = {}
  for k = 1, m do kappa[k] = kap_m:get(k, 1) end
  local phi = modes:functions()                   -- n x m
  local Yk = modes:project(y)                     -- m x c
  local E = opts.phi_at
  if opts.at ~= nil then E = modes:extend(opts.at) end
  if E ~= nil then
    if not is_mat(E) or E:cols() ~= m then
      error(("%s: phi_at must be an r x %d Mat (the modes extended to new points)"):format(fname, m), 2)
    end
  end
  local phi2 = phi:emul(phi)
  local E2 = E and E:emul(E)

  local res = { kappa = kap_m, n = n, modes = m, T = T, sigma = sigma, reset = reset }
  for j, L in ipairs(opts.cutoffs) do
    local thr = L * s2 / T
    local kept = 0
    while kept < m and kappa[kept + 1] >= thr and (kappa[kept + 1] > 0 or L == 0) do kept = kept + 1 end
    local r = { lambda = L, threshold = thr, kept = kept }
    if kept == 0 then
      r.mean = mat.zeros(n, c)
      if E then r.mean_at = mat.zeros(E:rows(), c) end
    else
      local S = mat.fromfunction(kept, c, function(k, cc)
        local kk = kappa[k]
        return kk / (kk + s2 / T) * Yk:get(k, cc)
      end)
      r.mean = phi:block(1, 1, n, kept) * S
      if E then r.mean_at = E:block(1, 1, E:rows(), kept) * S end
    end
    local w = mat.fromfunction(m, 1, function(k)
      local kk = math.max(kappa[k], 0)
      if k <= kept then return kk * s2 / (s2 + T * kk) end
      return reset == "prior" and kk or 0
    end)
    r.var = phi2 * w
    if E2 then r.var_at = E2 * w end
    if want_cov then
      local sw = w:sqrt():t()                        -- 1 x m
      local B = phi:emul(mat.ones(n, 1) * sw)
      r.cov = B:aat()
      if E then r.cov_at = E:emul(mat.ones(E:rows(), 1) * sw):aat() end
    end
    res[j] = r
  end
  return res
end

-- ------------------------------------------------------------------------------------------------
-- §7.4: generalised cos-net, information shells = momentum shells
-- ------------------------------------------------------------------------------------------------

-- vol(B_R) in d dimensions: V_0 = 1, V_1 = 2R, V_d = V_{d-2} 2π R²/d.
local function ball_volume(d, R)
  local v = d % 2 == 0 and 1 or 2 * R
  for k = (d % 2 == 0 and 2 or 3), d, 2 do v = v * 2 * math.pi * R * R / k end
  return v
end

-- Shared checks of the cos-net options: returns T vol(B_R) and N σ² (2π)^d.
local function cosnet_params(fname, o, need)
  for _, k in ipairs(need) do
    if o[k] == nil then error(("%s: option '%s' is required"):format(fname, k), 4) end
  end
  local d = o.d == nil and 1 or o.d
  d = type(d) == "number" and math.tointeger(d) or nil -- nil for 1.5, ±inf, NaN, 1e300, strings
  if not d or d < 1 or d > 64 then
    error(("%s: d must be an integer between 1 and 64, got %s"):format(fname, tostring(o.d)), 4)
  end
  local function num(k, default, pos_excl, pos_incl)
    local v = o[k] == nil and default or o[k]
    if not finite(v) then error(("%s: %s must be a finite number, got %s"):format(fname, k, tostring(v)), 4) end
    if pos_excl and not (v > 0) then error(("%s: %s must be > 0, got %g"):format(fname, k, v), 4) end
    if pos_incl and not (v >= 0) then error(("%s: %s must be >= 0, got %g"):format(fname, k, v), 4) end
    return v
  end
  local R = num("R", nil, true)
  local N = num("N", nil, true)
  local sigma = num("sigma", 1, true)
  local T = num("T", 1, true)
  local m = o.m ~= nil and num("m", nil, false, true) or nil
  local num_ = T * ball_volume(d, R)
  local den = N * sigma * sigma * (2 * math.pi) ^ d
  return num_, den, m, d
end

local COSNET = set("R", "m", "N", "d", "sigma", "T")

function M.fisher_of_momentum(b, opts)
  local fname = "nnft.brg.fisher_of_momentum"
  opts = check_opts(fname, opts, COSNET)
  local num, den, m = cosnet_params(fname, opts, { "R", "m", "N" })
  local b2
  if type(b) == "number" then
    if not finite(b) then error(("%s: b must be finite, got %s"):format(fname, tostring(b)), 2) end
    b2 = b * b
  elseif type(b) == "table" then
    b2 = 0
    for i, bi in ipairs(b) do
      if not finite(bi) then error(("%s: b[%d] must be finite, got %s"):format(fname, i, tostring(bi)), 2) end
      b2 = b2 + bi * bi
    end
  else
    error(("%s: b must be a number (|b|) or a list of components, got %s"):format(fname, type(b)), 2)
  end
  return num / (den * (b2 + m * m))
end

function M.cosnet_cutoff(L, opts)
  local fname = "nnft.brg.cosnet_cutoff"
  opts = check_opts(fname, opts, COSNET)
  if not finite(L) then error(("%s: Λ must be a finite number, got %s"):format(fname, tostring(L)), 2) end
  if L <= 0 then error(("%s: Λ must be > 0, got %g (Λ = 0 removes no shell: R_Λ = ∞)"):format(fname, L), 2) end
  local num, den, m = cosnet_params(fname, opts, { "R", "m", "N" })
  local R2 = num / (den * L) - m * m
  if R2 < 0 then
    error(("%s: Λ = %g exceeds λ(b = 0) = %g, the largest readout-Fisher eigenvalue: "
      .. "R_Λ² = %g < 0 (every neuron is sloppy); take Λ <= %g"):format(fname, L, num / (den * m * m),
      R2, num / (den * m * m)), 2)
  end
  return math.sqrt(R2)
end

function M.erg_rescale(opts)
  local fname = "nnft.brg.erg_rescale"
  opts = check_opts(fname, opts, set("m", "R", "R_Lambda"), { "m", "R", "R_Lambda" })
  local m = need_number(fname, "m", opts.m, nil, 0)
  local R = need_number(fname, "R", opts.R, 0)
  local RL = need_number(fname, "R_Lambda", opts.R_Lambda, 0)
  local s = R / RL
  return s, s * m
end

function M.mass_shift(opts)
  local fname = "nnft.brg.mass_shift"
  opts = check_opts(fname, opts, set("T", "R", "N", "d", "sigma"))
  local num, den = cosnet_params(fname, opts, { "R", "N" })
  return num / den
end

-- ------------------------------------------------------------------------------------------------
-- §7.2/§7.5: the finite-width flow of a trained ensemble
-- ------------------------------------------------------------------------------------------------

local function mean_sd(t)
  local s, s2 = 0, 0
  for _, v in ipairs(t) do s = s + v; s2 = s2 + v * v end
  local m = s / #t
  local var = #t > 1 and (s2 - #t * m * m) / (#t - 1) or 0
  return m, math.sqrt(math.max(var, 0) / #t), math.sqrt(math.max(var, 0))
end
M._mean_se_sd = mean_sd

function M.flow(nets, cutoffs, fishers, opts)
  local fname = "nnft.brg.flow"
  opts = check_opts(fname, opts, set("X_test", "y_test", "X_probe", "basis", "action", "strict",
                    "seed", "seeds", "prior_sd", "data", "mse_max", "histories"), { "X_test", "y_test" })
  if type(nets) ~= "table" or #nets == 0 then
    error(fname .. ": nets must be a non-empty list of Nets (an ensemble)", 2)
  end
  check_cutoffs(fname, cutoffs, true)
  -- fishers: a list of Fisher objects (one per net) or the options of nnft.fisher plus X=
  local flist, fopts, Xf
  if type(fishers) ~= "table" then
    error(fname .. ": the third argument must be a list of Fishers (one per net) or {X=, form=, sigma=, damping=}", 2)
  end
  if fishers.X ~= nil then
    fopts, Xf = {}, fishers.X
    for k, v in pairs(fishers) do
      if k ~= "X" then
        if k ~= "form" and k ~= "sigma" and k ~= "damping" and k ~= "max_memory" then
          error(("%s: unknown Fisher option '%s' (allowed: X, damping, form, max_memory, sigma)")
            :format(fname, tostring(k)), 2)
        end
        fopts[k] = v
      end
    end
  else
    if #fishers ~= #nets then
      error(("%s: %d Fishers for %d nets (one per member, or pass {X=, form=, ...})")
        :format(fname, #fishers, #nets), 2)
    end
    flist = fishers
  end
  if not is_mat(opts.X_test) or not is_mat(opts.y_test) then
    error(fname .. ": X_test and y_test must be Mats", 2)
  end
  if opts.X_probe ~= nil and not is_mat(opts.X_probe) then error(fname .. ": X_probe must be a Mat", 2) end
  local mse_max = opts.mse_max == nil and 1e3 or opts.mse_max
  if type(mse_max) ~= "number" or mse_max ~= mse_max then
    error(fname .. ": mse_max must be a number", 2)
  end
  for i, net in ipairs(nets) do
    if not (type(net) == "userdata" and pcall(function() return net:nparams() end)) then
      error(("%s: nets[%d] is not a Net (%s)"):format(fname, i, type(net)), 2)
    end
  end
  -- member i draws with seed·100003 + i, which must stay a valid seed (0 .. 2^63-1)
  local seed_max = (math.maxinteger - #nets) // 100003
  local seed = opts.seed == nil and 0 or opts.seed
  seed = type(seed) == "number" and math.tointeger(seed) or nil
  if not seed or seed < 0 or seed > seed_max then
    error(("%s: seed must be an integer between 0 and %d, got %s"):format(fname, seed_max,
      tostring(opts.seed)), 2)
  end
  if opts.seeds ~= nil then
    if type(opts.seeds) ~= "table" or #opts.seeds ~= #nets then
      error(("%s: seeds must be a list of %d integers (one per net)"):format(fname, #nets), 2)
    end
    for i, s in ipairs(opts.seeds) do
      if math.type(s) ~= "integer" or s < 0 then
        error(("%s: seeds[%d] must be an integer >= 0, got %s"):format(fname, i, tostring(s)), 2)
      end
    end
  end
  local hists = opts.histories
  if hists ~= nil then
    if type(hists) ~= "table" or #hists ~= #nets then
      error(("%s: histories must be the %d training histories (nnft.train_ensemble)"):format(fname, #nets), 2)
    end
    for i, h in ipairs(hists) do
      if type(h) ~= "table" then
        error(("%s: histories[%d] must be a training history (a table), got %s"):format(fname, i,
          type(h)), 2)
      end
    end
  end
  local sopts = { basis = opts.basis, action = opts.action, strict = opts.strict,
                  prior_sd = opts.prior_sd, data = opts.data }
  local Xte, yte, Xp = opts.X_test, opts.y_test, opts.X_probe
  local J = #cutoffs

  local members, dropped, pre = {}, 0, {}
  local mse, outs, sloppy = {}, {}, {}
  for j = 1, J do mse[j], outs[j], sloppy[j] = {}, {}, 0 end
  for i, net in ipairs(nets) do
    local p = net:loss(Xte, yte)
    if (hists and hists[i].diverged) or p ~= p or p >= mse_max then
      dropped = dropped + 1
    else
      members[#members + 1] = i
      pre[#pre + 1] = p
      local F = flist and flist[i] or core.fisher(net, Xf, fopts)
      sopts.seed = opts.seeds and opts.seeds[i] or seed * 100003 + i
      local cg, counts = core.shell.schedule(net, F, cutoffs, sopts)
      -- coarse graining moves trainable parameters only: the frozen prefix's features on the
      -- test set are the same for every Λ, so compute them once (not for generalised cos-nets —
      -- those with radius= — whose readout also depends on the frozen frequencies)
      local spec = net:arch():spec()
      local Hte = not (spec.kind == "cosnet" and spec.radius) and net:features(Xte) or nil
      for j = 1, J do
        mse[j][#mse[j] + 1] = Hte and cg[j]:loss(Hte, yte, { features = true }) or cg[j]:loss(Xte, yte)
        if Xp then
          local f = cg[j]:forward(Xp)
          if f:cols() ~= 1 then
            error(("%s: X_probe needs networks with one output, these have %d"):format(fname, f:cols()), 2)
          end
          outs[j][#outs[j] + 1] = f:totable(true)
        end
        sloppy[j] = sloppy[j] + counts[j]
        cg[j]:release()
      end
      if not flist then F:release() end
    end
  end
  local nk = #members
  if nk == 0 then
    error(("%s: every member was dropped (pre-RG test MSE >= mse_max = %g, NaN, or diverged)")
      :format(fname, mse_max), 2)
  end
  local res = { members = members, dropped = dropped, pre_mse = pre }
  for j, L in ipairs(cutoffs) do
    local m, se = mean_sd(mse[j])
    local r = { lambda = L, mse = m, se = se, mse_members = mse[j], sloppy = sloppy[j] / nk }
    if Xp then
      local O = mat.fromtable(outs[j])             -- members x probes
      local mean, sd = {}, {}
      for a = 1, O:cols() do
        local col = {}
        for e = 1, nk do col[e] = outs[j][e][a] end
        local mu, _, s = mean_sd(col)
        mean[a], sd[a] = mu, s
      end
      r.outputs, r.mean, r.sd = O, mean, sd
      r.G2 = O:ata() / nk
    end
    res[j] = r
  end
  return res
end

return M
