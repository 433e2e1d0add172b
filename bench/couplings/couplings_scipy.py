"""Peer for couplings.lua: the same vertex integrals, one scipy.integrate.quad / dblquad per tuple
and cutoff (the way the published scripts compute them), ReLU kernel of physics.md §2.3."""
import itertools, math, sys, time
from scipy import integrate

HMS = [7, 10, 15, 20, 30, 40, 50, 70, 100, 200, 500, 1e3, 2e3, 5e3, 7e3, 1e4, 2e4, 4e4, 6e4, 8e4, 1e5]

def kw(x, y, d):
    c = sum(a * b for a, b in zip(x, y)) / d
    q1 = sum(a * a for a in x) / d
    q2 = sum(b * b for b in y) / d
    s = math.sqrt(max(q1 * q2 - c * c, 0.0))
    th = math.atan2(s, c)
    return (s + (math.pi - th) * c) / (2 * math.pi)

def tuples(n):
    return list(itertools.combinations_with_replacement(range(n), 4))

def d1():
    X = [(0.2,), (0.4,), (0.6,), (0.8,), (1.0,), (1.2,)]
    for t in tuples(6):
        for L in HMS:
            f = lambda x: math.prod(kw(X[i], (x,), 1) for i in t)
            integrate.quad(f, -L, 0, epsrel=1e-8)
            integrate.quad(f, 0, L, epsrel=1e-8)

def d2():
    X = [(0.3, 0.4), (-0.5, 0.2), (0.7, -0.6)]
    for t in tuples(3):
        for L in [7, 10, 15, 20]:
            f = lambda y, x: math.prod(kw(X[i], (x, y), 2) for i in t)
            for (a, b) in [(-L, 0), (0, L)]:
                for (c, e) in [(-L, 0), (0, L)]:
                    integrate.dblquad(f, a, b, c, e, epsrel=1e-6)

for name, fn in [("d1_126x21", d1), ("d2_15x4", d2)]:
    t = time.process_time(); fn(); print("scipy %s %.4f" % (name, time.process_time() - t)); sys.stdout.flush()
