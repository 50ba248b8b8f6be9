#!/usr/bin/env python3
"""Instructions per loop iteration on the hot path of the FP4 quant kernels, from SASS.

    nvcc -cubin -arch=sm_90a ... packages/nvfp4-quant/csrc/sm90/quant_sm90.cu -o q.cubin
    nvdisasm -g -c q.cubin > q.dis          # -g: the source line of every instruction
    python perf/nvfp4-quant/sass_hot_path.py q.dis --kernel 'experts.*Lb0ELb1' \
        --via 'stream.cuh:155 .*MUFU' --via STG.E.64 --via STG.E.U8 \
        --avoid 'STG.E.U8.*RZ' --avoid 'experts.cuh:84\s\s(?!BSYNC)' --avoid 'STG.E desc' --avoid 'STG.E.128'

The path is the shortest cycle through a loop head that visits, in order, the instructions
matching the --via regexes (matched against "file:line  SASS"), skipping basic blocks with an
instruction matching an --avoid regex: e.g. the code store (STG.E.64) and the scale store
(STG.E.U8) without the padding stores, or with one 4-byte padding store (--via 'STG.E desc').
The loop of the two-buffer stream has two units per cycle: give the waypoints twice and halve.
A static count: predicated instructions count whether or not they execute; the data decide
which branches are taken, so the waypoints must name the case (perf/nvfp4-quant/NOTES.md v7).
"""
import re, sys, heapq, collections

def parse(txt):
    out = {}
    parts = re.split(r'^\.text\.(\S+):\n', txt, flags=re.M)
    for i in range(1, len(parts), 2):
        ins, labels, cur = [], {}, '?'
        for ln in parts[i + 1].split('\n'):
            m = re.match(r'\s*//## File "([^"]+)", line (\d+)', ln)
            if m: cur = m.group(1).split('/')[-1] + ':' + m.group(2); continue
            m = re.match(r'^(\.L_x_\d+):', ln)
            if m: labels[m.group(1)] = len(ins); continue
            m = re.match(r'\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;', ln)
            if m: ins.append((int(m.group(1), 16), m.group(2), cur))
        out[parts[i]] = (ins, labels)
    return out

def short(n):
    k = 'dense' if 'dense_kernel' in n else 'experts' if 'experts_kernel' in n else n[:40]
    t = 'bf16' if 'bfloat16' in n else 'fp16' if '__half' in n else '?'
    b = re.findall(r'Lb([01])E', n)
    return f"{k}<{t},silu={b[0] if b else '?'},{b[1] if len(b) > 1 else '?'}>"

def cfg(ins, labels):
    starts = {0} | set(labels.values())
    for k, (_, t, _) in enumerate(ins):
        if re.search(r'\b(BRA|EXIT|RET|BRX|JMP|CALL)\b', t): starts.add(k + 1)
    starts = sorted(s for s in starts if s < len(ins))
    bid = {s: j for j, s in enumerate(starts)}
    ends = starts[1:] + [len(ins)]
    succ = collections.defaultdict(list)
    for j, (s, e) in enumerate(zip(starts, ends)):
        t = ins[e - 1][1]
        m = re.search(r'\bBRA\b.*`\((\.L_x_\d+)\)', t)
        if m: succ[j].append(bid[labels[m.group(1)]])
        falls = not (m and not t.startswith('@')) and not (re.search(r'\b(EXIT|RET)\b', t) and not t.startswith('@'))
        if falls and e < len(ins): succ[j].append(j + 1)
    return starts, ends, succ

def count(ins, labels, waypoints, verbose=False, avoid=()):
    starts, ends, succ = cfg(ins, labels)
    size = [e - s for s, e in zip(starts, ends)]
    for j, (s0, e0) in enumerate(zip(starts, ends)):
        if any(re.search(a, ins[k][2] + '  ' + ins[k][1]) for a in avoid for k in range(s0, e0)): size[j] = 10**6
    blk = lambda k: max(j for j, s in enumerate(starts) if s <= k)
    # Waypoint instruction indices, in order of address.
    wk, pos = [], 0
    for w in waypoints:
        k = next((k for k in range(pos, len(ins)) if re.search(w, ins[k][2] + '  ' + ins[k][1])), None)
        if k is None: return None, f'waypoint {w!r} not found'
        wk.append(k); pos = k + 1
    first = blk(wk[0])
    heads = sorted({t for j in list(succ) for t in succ[j] if t <= first and j >= blk(wk[-1])})
    def sp(a, b, through_start):
        # shortest path from the *end* of block a (or its start if through_start) to the start of b
        dist, prev = {}, {}
        pq = []
        init = size[a] if not through_start else 0
        if through_start and a == b: return 0, [a]
        for v in succ[a]:
            d = (0 if through_start else 0) + size[a]
            if d < dist.get(v, 1e18): dist[v] = d; prev[v] = a; heapq.heappush(pq, (d, v))
        while pq:
            d, u = heapq.heappop(pq)
            if d > dist[u]: continue
            if u == b: break
            for v in succ[u]:
                nd = d + size[u]
                if nd < dist.get(v, 1e18): dist[v] = nd; prev[v] = u; heapq.heappush(pq, (nd, v))
        if b not in dist: return None, None
        path, u = [], b
        while u != a: path.append(u); u = prev[u]
        return dist[b], [a] + path[::-1]
    best = None
    for H in heads:
        chain = [H]
        for k in wk:
            if blk(k) != chain[-1]: chain.append(blk(k))
        chain.append(H)
        tot, path, ok = 0, [], True
        for x, y in zip(chain, chain[1:]):
            d, p = sp(x, y, False)
            if d is None: ok = False; break
            tot += d; path += p[:-1]
        if ok and (best is None or tot < best[0]): best = (tot, path)
    if best is None: return None, 'no cycle'
    tot, path = best
    lines = collections.Counter()
    for j in path:
        for k in range(starts[j], ends[j]): lines[ins[k][2].split(':')[0]] += 1
    if verbose:
        for j in path:
            for k in range(starts[j], ends[j]): print(f'    {ins[k][0]:6x} {ins[k][2]:28s} {ins[k][1]}')
    return tot, lines

if __name__ == '__main__':
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument('listing'); ap.add_argument('--kernel', default='')
    ap.add_argument('--via', action='append', default=[]); ap.add_argument('-v', action='store_true')
    ap.add_argument('--by-file', action='store_true'); ap.add_argument('--avoid', action='append', default=[])
    a = ap.parse_args()
    for name, (ins, labels) in parse(open(a.listing).read()).items():
        if a.kernel and not re.search(a.kernel, name): continue
        tot, info = count(ins, labels, a.via or ['STG.E.64'], a.v, a.avoid)
        if tot is None: print(f'{short(name):32s} {info}'); continue
        extra = ('  ' + ' '.join(f'{f}={n}' for f, n in info.most_common())) if a.by_file else ''
        print(f'{short(name):32s} {tot:4d} per unit ({tot / 16:5.2f} per element){extra}')
