"""Model definitions + network spec → one C file, in GeNN's update order.

The generator knows the *mechanics* only: memory layout, spike lists, update
order, random numbers and connectivity. Model behaviour comes exclusively from
the code strings of :mod:`symstdp_genn.models`, which are written in GeNN 5's
code dialect; this module substitutes names in them the way GeNN's own code
generator does (variables become array elements or locals, parameters become
literals, ``addToPost``/``injectCurrent``/``gennrand_uniform`` become the
backend's operations).

Per time step, as GeNN: (1) presynaptic spikes of the previous step are
delivered and the presynaptic learning code runs, (2) postsynaptic learning
runs for the previous step's target spikes, (3) every neuron population
updates: postsynaptic models apply and decay their input, sim code, pre- then
postsynaptic variable dynamics, threshold; a spiking neuron then runs the pre-
and postsynaptic spike code and finally its reset code (GeNN 5's
``NeuronUpdateGroupMerged::generateNeuronUpdate`` order).

Every per-neuron array has a leading batch axis and each batch lane is an
independent simulation (lanes run in parallel with OpenMP); synaptic weights
are shared by all lanes, so learning needs batch size 1.

One lane can also run on several threads *within* a time step: every
population is cut into contiguous per-thread blocks of neurons (:func:`part`
in the C code), and a thread owns its block's neurons, their incoming
synapses (a block of weight columns) and their input conductances. A step is
two phases with one barrier after each: (1) synapse delivery and learning,
written by target, so no two threads write the same value; (2) neuron
updates, each thread appending its block's spikes to its own segment of the
spike list. Consumers walk the segments in thread order, which is ascending
neuron order, exactly the single-threaded list; every value is therefore
computed by the same operations in the same order whatever the thread count,
and results are byte-identical for any number of threads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ...network import WEIGHT_VAR, NetworkSpec, Population, Projection, derived_values
from .dialect import c_type, literal, substitute
from .runtime import PROFILE, TEMPLATE

#: most threads one lane's time step can be split across (size of the per-thread tables)
MAX_STEP_THREADS = 64
#: int32 entries between two threads' spike counts (64 bytes: no two threads write one
#: cache line; shared, they bounced between the cores several times per step)
COUNT_STRIDE = 16
#: threads whose block timers a profiling build keeps
PROFILED_THREADS = 4
#: populations smaller than this are not split: thread 0 owns them. A block edge costs
#: cache lines moved between the cores every step (the lines at the edge, and those the
#: other core's prefetchers fetch past it), which a small population's work does not
#: repay: with the 784 inputs left whole, mnist-6400 trained 3–10 % faster on two threads
#: (interleaved A/B, training presentations), and mnist-400 (400 hidden) trained faster
#: on one thread than on a split step in four benchmark runs out of four
MIN_SPLIT_NEURONS = 1024

@dataclass(frozen=True)
class ArraySpec:
    """One array the generated code reads or writes; Python owns its memory.

    ``batched`` arrays get a leading batch axis of the backend's batch size.
    ``kind`` is ``state`` (part of the network's state, saved in checkpoints),
    ``counts`` (spike counts of one presentation), ``scratch``, or ``scaling`` (what
    synaptic scaling remembers between calls: which weight columns changed since, and
    their sums then; see ``normalize_columns``).
    """

    key: str
    ctype: str
    shape: tuple[int, ...]
    batched: bool
    kind: str = "state"


def count_at(seg_count: str, thread: str) -> str:
    """C expression of ``thread``'s spike count in a population's ``seg_count`` array."""
    return f"{seg_count}[{thread} * {COUNT_STRIDE}]"


def _indent(code: str, level: int) -> str:
    pad = "    " * level
    lines = code.strip().splitlines()
    return "\n".join(pad + line.strip() if line.strip() else "" for line in lines)


class _Generator:
    def __init__(self, spec: NetworkSpec):
        self.spec = spec
        self.precision = spec.precision
        self.arrays: list[ArraySpec] = []
        self.dynamic: list[tuple[str, str]] = []
        self.sizes = {p.name: p.size for p in spec.populations}
        for pop in spec.populations:
            self.dynamic += [(pop.name, p) for p in pop.dynamic_params]
        for proj in spec.projections:
            self.dynamic += [(proj.name, p) for p in proj.dynamic_params]
        self._check()

    # -- layout -----------------------------------------------------------
    def _check(self) -> None:
        pops = {p.name: p for p in self.spec.populations}
        for proj in self.spec.projections:
            for end in (proj.source, proj.target):
                if end not in pops:
                    raise ValueError(f"projection {proj.name}: unknown population {end}")
            wu = proj.weight_update
            if proj.connectivity in ("one_to_one", "all_but_self"):
                if pops[proj.source].size != pops[proj.target].size:
                    raise ValueError(
                        f"projection {proj.name}: {proj.connectivity} needs equal sizes")
            needs_synapses = bool(wu.vars or wu.post_vars or wu.post_spike_syn_code)
            if proj.connectivity == "all_but_self" and needs_synapses:
                raise ValueError(
                    f"projection {proj.name}: all_but_self connectivity is computed in O(N) per "
                    "spike and needs a weight-update model without per-synapse or postsynaptic "
                    "variables (use a constant-weight model)")
            if proj.connectivity not in ("dense", "one_to_one", "all_but_self"):
                raise ValueError(
                    f"projection {proj.name}: unknown connectivity {proj.connectivity}")

    def array(self, key: str, ctype: str, shape: tuple[int, ...], batched: bool,
              kind: str = "state") -> str:
        """Register an array; return the C name of its (lane-offset) pointer."""
        self.arrays.append(ArraySpec(key, ctype, shape, batched, kind))
        return re.sub(r"\W", "_", key)

    def uses_rng(self, pop: Population) -> bool:
        m = pop.model
        return "gennrand_" in m.sim_code + m.threshold_condition_code + m.reset_code

    def layout(self) -> None:
        self.c = {}  # key -> C pointer name
        for pop in self.spec.populations:
            n = pop.size
            for var, vtype in pop.model.vars:
                self.c[f"{pop.name}.{var}"] = self.array(
                    f"{pop.name}.{var}", c_type(vtype, f"{pop.name}.{var}"), (n,), True)
            self.c[f"{pop.name}.spike_count"] = self.array(
                f"{pop.name}.spike_count", "int32_t", (1,), True)
            self.c[f"{pop.name}.spikes"] = self.array(f"{pop.name}.spikes", "int32_t", (n,), True)
            # while a run is in progress the spikes live in per-thread segments:
            # thread t's at seg[part(n, t)], seg_count[t] of them
            self.c[f"{pop.name}.seg"] = self.array(
                f"{pop.name}.seg", "int32_t", (n,), True, "scratch")
            # one cache line per thread's count: every thread writes its own each step
            self.c[f"{pop.name}.seg_count"] = self.array(
                f"{pop.name}.seg_count", "int32_t", (MAX_STEP_THREADS * COUNT_STRIDE,), True,
                "scratch")
            if self.uses_rng(pop):
                # xoshiro128+ state: four words per neuron, stored word-major so
                # the neuron loop reads them with unit stride
                self.c[f"{pop.name}.rng"] = self.array(
                    f"{pop.name}.rng", "uint32_t", (4, n), True)
            if pop.record_spikes:
                self.c[f"{pop.name}.counts"] = self.array(
                    f"{pop.name}.counts", "int32_t", (n,), True, "counts")
        sizes = {p.name: p.size for p in self.spec.populations}
        for proj in self.spec.projections:
            npre, npost = sizes[proj.source], sizes[proj.target]
            wu = proj.weight_update
            self.c[f"{proj.name}.inSyn"] = self.array(
                f"{proj.name}.inSyn", "scalar", (npost,), True)
            syn_shape = (npre, npost) if proj.connectivity == "dense" else (npre,)
            for var, vtype in wu.vars:
                self.c[f"{proj.name}.{var}"] = self.array(
                    f"{proj.name}.{var}", c_type(vtype, f"{proj.name}.{var}"), syn_shape, False)
            for var, vtype in wu.pre_vars:
                self.c[f"{proj.name}.{var}"] = self.array(
                    f"{proj.name}.{var}", c_type(vtype, f"{proj.name}.{var}"), (npre,), True)
            for var, vtype in wu.post_vars:
                self.c[f"{proj.name}.{var}"] = self.array(
                    f"{proj.name}.{var}", c_type(vtype, f"{proj.name}.{var}"), (npost,), True)
            if proj.connectivity == "all_but_self":
                self.c[f"{proj.name}.scratch"] = self.array(
                    f"{proj.name}.scratch", "scalar", (npre,), True, "scratch")
            if proj.scalable:
                # per target: whether any weight of its column changed since the last
                # scaling, and the column's sum as that scaling left it
                self.c[f"{proj.name}.changed"] = self.array(
                    f"{proj.name}.changed", "uint8_t", (npost,), False, "scaling")
                self.c[f"{proj.name}.column_sum"] = self.array(
                    f"{proj.name}.column_sum", "double", (npost,), False, "scaling")
        self.ctype = {a.key: a.ctype for a in self.arrays}  # key -> C element type

    # -- name tables --------------------------------------------------------
    def constants(self, target: str, model: object, params: Mapping[str, float],
                  dynamic: tuple[str, ...]) -> dict[str, str]:
        names: dict[str, str] = {"dt": literal(self.spec.dt, self.precision), "t": "t"}
        for name, value in params.items():
            if name in dynamic:
                names[name] = f"dyn_{self.dynamic.index((target, name))}"
            else:
                names[name] = literal(value, self.precision)
        for name, value in derived_values(model, params, self.spec.dt).items():
            names[name] = literal(value, self.precision)
        missing = [p for p in getattr(model, "params", ()) if p not in params]
        if missing:
            raise ValueError(f"{target}: no value for parameter(s) {', '.join(missing)}")
        return names

    def sub(self, code: str, names: Mapping[str, str],
            calls: Mapping[str, Callable[[str], str]] | None = None) -> str:
        return substitute(code, names, self.precision, calls)

    # -- code ---------------------------------------------------------------
    def synapse_names(self, proj: Projection, npost: int) -> dict[str, str]:
        """Names in per-synapse code: pre variables at ``i``, post variables at ``j``,
        synapse variables at (i, j) — ``i`` alone for one-to-one connectivity; dense
        synapse variables are locals ``ls_<var>`` (see :meth:`synapse_code`)."""
        wu, c = proj.weight_update, self.c
        names = self.constants(proj.name, wu, proj.wu_params, proj.dynamic_params)
        for var, _ in wu.pre_vars:
            names[var] = f"{c[f'{proj.name}.{var}']}[i]"
        for var, _ in wu.post_vars:
            names[var] = f"{c[f'{proj.name}.{var}']}[j]"
        for var, _ in wu.vars:
            names[var] = (f"ls_{var}" if proj.connectivity == "dense"
                          else f"{c[f'{proj.name}.{var}']}[i]")
        return names

    def synapse_code(self, proj: Projection, code: str, npost: int,
                     mark: str | None = None) -> str:
        """Per-synapse ``code`` of a dense projection at (i, j), its synapse variables in
        locals that are stored back only where their bits changed. Learning leaves most
        weights as they were (a weight plus η times a trace that has decayed to zero is
        the same weight), so untouched cache lines stay clean, and a changed weight marks
        its column for the next synaptic scaling, which then leaves the other columns
        alone (``mark``: the statement that does so, if not the plain store). Comparing
        bits (not values) keeps −0 and NaN exact."""
        wu, c = proj.weight_update, self.c
        index = f"(size_t)i * {npost} + j"
        ctype = self.ctype
        load, store = [], []
        for var, _ in wu.vars:
            arr = c[f"{proj.name}.{var}"]
            load.append(f"{ctype[f'{proj.name}.{var}']} ls_{var} = {arr}[{index}];")
            marks = (f" {mark or c[f'{proj.name}.changed'] + '[j] = 1;'}"
                     if var == WEIGHT_VAR and proj.scalable else "")
            store.append(f"if (!same_bits(ls_{var}, {arr}[{index}])) "
                         f"{{ {arr}[{index}] = ls_{var};{marks} }}")
        return "\n".join([*load, code, *store])

    def spike_loop(self, pop: str, index: str, body: str, own: bool = False,
                   tag: str = "") -> str:
        """Run ``body`` for each spike of ``pop`` in the previous step, with the neuron's
        index in ``index``: every thread's segment in thread order (ascending neurons, as
        one thread makes the list), or with ``own`` only the calling thread's. ``tag``
        suffixes the loop's own names, for a spike loop inside another."""
        n = self.sizes[pop]
        seg, seg_count = self.c[f"{pop}.seg"], self.c[f"{pop}.seg_count"]
        tt, sp, k = f"tt{tag}", f"sp{tag}", f"k{tag}"
        head = (f"{{\n    const int {tt} = tid;\n" if own
                else f"for (int {tt} = 0; {tt} < nth; {tt}++) {{\n")
        return (head + f"    const int32_t *{sp} = {seg} + part({n}, {tt}, nth, cut);\n"
                f"    for (int {k} = 0; {k} < {count_at(seg_count, tt)}; {k}++) {{\n"
                f"        const int {index} = {sp}[{k}];\n{_indent(body, 2)}\n    }}\n}}\n")

    def synapse_update(self, proj: Projection, sizes: Mapping[str, int]) -> str:
        """Delivery (and presynaptic learning) of the source's spikes; a thread handles
        its own block of targets, so it writes only its targets' inSyn and weights."""
        wu = proj.weight_update
        if not wu.pre_spike_syn_code.strip():
            return ""
        npost, c = sizes[proj.target], self.c
        names = self.synapse_names(proj, npost)
        insyn = c[f"{proj.name}.inSyn"]
        title = f"// {proj.name}: presynaptic spikes of {proj.source}\n"
        targets = (f"const int jlo = part({npost}, tid, nth, cut), "
                   f"jhi = part({npost}, tid + 1, nth, cut);\n")
        deliver = {"addToPost": lambda x: f"{insyn}[j] += ({x})"}
        if proj.connectivity == "dense":
            body = self.synapse_code(proj, self.sub(wu.pre_spike_syn_code, names, deliver),
                                     npost)
            return title + targets + self.spike_loop(
                proj.source, "i", f"for (int j = jlo; j < jhi; j++) {{\n{_indent(body, 1)}\n}}")
        if proj.connectivity == "one_to_one":
            # source and target have the same size, hence the same blocks: the
            # targets of this thread's own spikes are exactly this thread's targets
            body = self.sub(wu.pre_spike_syn_code, names, deliver)
            return title + self.spike_loop(proj.source, "i", f"const int j = i;\n{body}",
                                           own=True)
        # all_but_self: every target receives the sum of all spikes' contributions
        # minus its own partner's, in O(N) per step instead of O(N) per spike. Each
        # thread sums all contributions in the same order (so every thread has the
        # same total) and keeps the contributions of its own block's partners.
        scratch = c[f"{proj.name}.scratch"]
        body = self.sub(wu.pre_spike_syn_code, names, {"addToPost": lambda x: f"contrib += ({x})"})
        collect = (f"scalar contrib = 0.0f;\n{body}\n"
                   f"if (tt == tid) {scratch}[i] = contrib;\ntotal += contrib;")
        return (
            f"// {proj.name}: presynaptic spikes of {proj.source}, all but self\n{targets}"
            f"scalar total = 0.0f;\nint any = 0;\n"
            f"for (int tt = 0; tt < nth; tt++) "
            f"any |= {count_at(c[proj.source + '.seg_count'], 'tt')} > 0;\n"
            f"if (any) {{\n"
            f"{_indent(self.spike_loop(proj.source, 'i', collect), 1)}\n"
            f"    for (int j = jlo; j < jhi; j++) {{\n"
            f"        {insyn}[j] += total - {scratch}[j];\n    }}\n"
            f"{_indent(self.spike_loop(proj.source, 'i', f'{scratch}[i] = 0.0f;', own=True), 1)}"
            f"\n}}\n")

    def postsynaptic_learning(self, proj: Projection, sizes: Mapping[str, int]) -> str:
        """Learning on the target's spikes: each thread handles its own targets' spikes,
        i.e. its own weight columns; or, for a small target that thread 0 owns whole fed
        by a split source, every thread its own rows (:meth:`row_split_learning`)."""
        wu = proj.weight_update
        if not wu.post_spike_syn_code.strip():
            return ""
        npre, npost = sizes[proj.source], sizes[proj.target]
        body = self.sub(wu.post_spike_syn_code, self.synapse_names(proj, npost))
        title = f"// {proj.name}: postsynaptic learning for spikes of {proj.target}\n"
        if proj.connectivity == "dense" and npost < MIN_SPLIT_NEURONS <= npre:
            return self.row_split_learning(proj, body, npre, npost)
        if proj.connectivity == "dense":
            body = self.synapse_code(proj, body, npost)
            loop = f"for (int i = 0; i < {npre}; i++) {{\n{_indent(body, 1)}\n}}"
            return title + self.spike_loop(proj.target, "j", loop, own=True)
        return title + self.spike_loop(proj.target, "j", f"const int i = j;\n{body}", own=True)

    def row_split_learning(self, proj: Projection, body: str, npre: int, npost: int) -> str:
        """Postsynaptic learning of a target too small to split (thread 0 owns it) from a
        split source: each target spike's column is updated by every thread over its own
        block of source rows. By columns, thread 0 alone read every source neuron's
        presynaptic trace for every target spike, half of them just written by the other
        thread (mnist-6400: 6 400 traces for each of ~64 output spikes per presentation,
        ~13 000 cache lines moved between the cores and back, and 0.5 ms of work on
        thread 0 alone). Rows of the previous step's source spikes are the exception:
        thread 0's presynaptic block of this projection updates those rows in the same
        phase, so thread 0 also updates them here, after it, as one thread would (pre
        before post for every synapse). No synapse is updated by two threads, and each
        is updated by the same operations in the same order as on one thread."""
        c = self.c
        seg, seg_count = c[f"{proj.source}.seg"], c[f"{proj.source}.seg_count"]
        changed = c.get(f"{proj.name}.changed")
        body = self.synapse_code(proj, body, npost, mark="col_changed = 1;")
        rows = (
            f"const int ilo = part({npre}, tid, nth, cut), ihi = part({npre}, tid + 1, nth, cut);\n"
            f"const int32_t *own = {seg} + ilo;\n"
            f"const int nown = {count_at(seg_count, 'tid')};\n")
        per_spike = (
            "int col_changed = 0;\n"
            f"{'' if changed is not None else '(void)col_changed;'}\n"
            "/* this thread's rows, in runs between its source spikes (ascending) */\n"
            "int start = ilo;\n"
            "for (int r = 0; r <= nown; r++) {\n"
            "    const int stop = r < nown ? own[r] : ihi;\n"
            f"    for (int i = start; i < stop; i++) {{\n{_indent(body, 2)}\n    }}\n"
            "    start = stop + 1;\n"
            "}\n"
            "/* the source spikes' rows: thread 0's, after its presynaptic update of them */\n"
            "if (tid == 0) {\n"
            f"{_indent(self.spike_loop(proj.source, 'i', body, tag='_src'), 1)}\n"
            "}\n")
        if changed is not None:
            per_spike += (f"if (col_changed) __atomic_store_n(&{changed}[j], (uint8_t)1, "
                          "__ATOMIC_RELAXED);\n")
        return (f"// {proj.name}: postsynaptic learning for spikes of {proj.target}, by "
                f"source rows\n{rows}" + self.spike_loop(proj.target, "j", per_spike))

    def neuron_update(self, pop: Population) -> str:
        c, m = self.c, pop.model
        names = self.constants(pop.name, m, pop.params, pop.dynamic_params)
        names["id"] = "i"
        for var, _ in m.vars:
            names[var] = f"l_{var}"
        names["Isyn"] = "Isyn"
        rng_calls = {"gennrand_uniform": lambda _: "rng_uniform(l_rng)"}
        incoming = [j for j in self.spec.projections if j.target == pop.name]
        outgoing = [j for j in self.spec.projections if j.source == pop.name]

        def wu_vars(proj: Projection, which: str) -> list[str]:
            wu = proj.weight_update
            side = wu.pre_vars if which == "pre" else wu.post_vars
            return [f"{proj.name}.{v}" for v, _ in side]

        def wu_code(proj: Projection, which: str) -> str:
            """Pre/post variable code as a block; the variables live in locals
            (``lw_<projection>_<var>``) so the loop has no conditional stores."""
            wu = proj.weight_update
            code = getattr(wu, which)
            if not code.strip():
                return ""
            wnames = self.constants(proj.name, wu, proj.wu_params, proj.dynamic_params)
            for var, _ in wu.pre_vars if which.startswith("pre") else wu.post_vars:
                wnames[var] = f"lw_{c[f'{proj.name}.{var}']}"
            return f"{{ // {proj.name} {which}\n{_indent(self.sub(code, wnames), 1)}\n}}"

        local_wu = [k for j in incoming for k in wu_vars(j, "post")]
        local_wu += [k for j in outgoing for k in wu_vars(j, "pre")]
        ctype = self.ctype
        load_wu = [f"        {ctype[k]} lw_{c[k]} = {c[k]}[i];" for k in local_wu]
        store_wu = [f"        {c[k]}[i] = lw_{c[k]};" for k in local_wu]

        # Pass 1 (no cross-neuron dependency, so the compiler can vectorise it):
        # inputs, sim code, pre/post variable dynamics, threshold → flag.
        # Pass 2 (rare): spike list, counts, reset and spike code of spiking neurons.
        # Both run over this thread's block [lo, hi) of the population.
        flags = f"{pop.name}_flag"
        seg, seg_count = c[pop.name + ".seg"], c[pop.name + ".seg_count"]
        lines = [f"// neuron update: {pop.name}", "{",
                 f"    const int lo = part({pop.size}, tid, nth, cut), "
                 f"hi = part({pop.size}, tid + 1, nth, cut);"]
        if self.uses_rng(pop):
            # one stream per neuron (as GeNN's per-thread generators): no
            # dependency between neurons, so the loop still vectorises
            rng, n = c[pop.name + ".rng"], pop.size
            load_wu = [f"        uint32_t l_rng[4] = {{{rng}[i], {rng}[{n} + i], "
                       f"{rng}[{2 * n} + i], {rng}[{3 * n} + i]}};", *load_wu]
            store_wu = [*store_wu, *(f"        {rng}[{k * n} + i] = l_rng[{k}];"
                                     for k in range(4))]
        lines.append("    for (int i = lo; i < hi; i++) {")
        for var, _ in m.vars:
            lines.append(f"        {ctype[f'{pop.name}.{var}']} l_{var} = "
                         f"{c[f'{pop.name}.{var}']}[i];")
        lines += load_wu
        lines.append("        scalar Isyn = 0.0f;")
        for proj in incoming:
            ps = proj.postsynaptic
            ps_names = self.constants(proj.name + ".ps", ps, proj.ps_params, ())
            ps_names["inSyn"] = f"{c[f'{proj.name}.inSyn']}[i]"
            for ref, _ in ps.neuron_var_refs:
                ps_names[ref] = f"l_{ref}"
            code = self.sub(ps.sim_code, ps_names, {"injectCurrent": lambda x: f"Isyn += ({x})"})
            lines.append(f"        {{ // {proj.name} input\n{_indent(code, 3)}\n        }}")
        lines.append(_indent(self.sub(m.sim_code, names, rng_calls), 2))
        for proj in outgoing:
            lines.append(_indent(wu_code(proj, "pre_dynamics_code"), 2))
        for proj in incoming:
            lines.append(_indent(wu_code(proj, "post_dynamics_code"), 2))
        threshold = self.sub(m.threshold_condition_code, names, rng_calls)
        lines.append(f"        {flags}[i] = ({threshold.strip()}) ? 1 : 0;")
        for var, _ in m.vars:
            lines.append(f"        {c[f'{pop.name}.{var}']}[i] = l_{var};")
        lines += store_wu
        lines.append("    }")
        lines.append("    int nspk = 0;")
        lines.append("    for (int i = lo; i < hi; i++) {")
        # spikes are rare: skip eight silent neurons per test (an OR of eight flags, which
        # the compiler vectorises; at N = 6400 this pass cost the inhibitory update more
        # than its dynamics did when it tested one flag at a time)
        lines.append("        if (i + 8 <= hi) {")
        lines.append("            int32_t any = 0;")
        lines.append(f"            for (int q = 0; q < 8; q++) any |= {flags}[i + q];")
        lines.append("            if (any == 0) { i += 7; continue; }")
        lines.append("        }")
        lines.append(f"        if (!{flags}[i]) continue;")
        lines.append(f"        {seg}[lo + nspk++] = i;")
        if pop.record_spikes:
            lines.append(f"        if (record) {c[pop.name + '.counts']}[i]++;")
        if m.reset_code.strip():
            for var, _ in m.vars:
                lines.append(f"        {ctype[f'{pop.name}.{var}']} l_{var} = "
                         f"{c[f'{pop.name}.{var}']}[i];")
        lines += load_wu
        # as GeNN 5: emitting the spike runs the pre/post spike code, then the reset
        for proj in outgoing:
            lines.append(_indent(wu_code(proj, "pre_spike_code"), 2))
        for proj in incoming:
            lines.append(_indent(wu_code(proj, "post_spike_code"), 2))
        if m.reset_code.strip():
            lines.append(_indent(self.sub(m.reset_code, names, rng_calls), 2))
            for var, _ in m.vars:
                lines.append(f"        {c[f'{pop.name}.{var}']}[i] = l_{var};")
        lines += store_wu
        lines.append("    }")
        lines.append(f"    {count_at(seg_count, 'tid')} = nspk;")
        lines.append("}")
        return "\n".join(line for line in lines if line.strip())

    def switched_off(self, code: str, scalars: list[str]) -> str:
        """``code`` twice: a copy for when every dynamic parameter it reads is +0.0 (the
        switches ``learning`` and ``teacher`` off, as in every evaluation pass), with
        those parameters written as the literal 0, and the general one. The compiler then
        drops the switched-off branches from the vector loops (it does not unswitch them
        on a run-time value itself: the hidden update of a frozen mnist-6400 network took
        as long as with learning on). Same values, same operations: results are equal."""
        if not scalars:
            return code
        zero = literal(0.0, self.precision)
        off = re.sub(r"\b(" + "|".join(scalars) + r")\b", zero, code)
        condition = " && ".join(f"is_plus_zero({d})" for d in scalars)
        return f"if ({condition}) {{\n{off}\n}}\nelse {{\n{code}\n}}"

    def generate(self, profile: bool = False) -> str:
        self.layout()
        sizes = self.sizes
        scalar = "float" if self.precision == "float" else "double"
        unpack = []
        ctypes_of = {}
        for idx, arr in enumerate(self.arrays):
            name = self.c[arr.key]
            ctypes_of[name] = arr.ctype
            lane = 1
            for dim in arr.shape:
                lane *= dim
            offset = f" + (size_t)b * {lane}" if arr.batched else ""
            unpack.append(f"    {arr.ctype} *{name} = ({arr.ctype} *)a[{idx}]{offset};")
        dyn = [f"    const scalar dyn_{k} = dyn[{k}]; /* {t}.{p} */"
               for k, (t, p) in enumerate(self.dynamic)]
        synapse_phase = [self.synapse_update(j, sizes) for j in self.spec.projections]
        synapse_phase += [self.postsynaptic_learning(j, sizes) for j in self.spec.projections]
        neuron_phase = [self.neuron_update(p) for p in self.spec.populations]
        # Each block is a function whose arrays are ``restrict`` parameters: the
        # compiler then knows they never alias and vectorises the neuron loops.
        functions: list[str] = []
        n_blocks = sum(1 for b in synapse_phase + neuron_phase if b.strip())
        self.profile_labels: list[str] = []

        def call(n: int, text: str) -> str:
            if not profile:
                return f"        {text}"
            return (f"        {{ const double t0 = tid < PROF_THREADS ? wall_seconds() : 0.0; "
                    f"{text} if (tid < PROF_THREADS) "
                    f"prof_seconds[tid][{n}] += wall_seconds() - t0; }}")

        phases: list[list[str]] = []
        for blocks in (synapse_phase, neuron_phase):
            calls = []
            for code in (b for b in blocks if b.strip()):
                n = len(functions)
                self.profile_labels.append(code.splitlines()[0].removeprefix("// "))
                arrays = [name for name in ctypes_of if re.search(rf"\b{name}\b", code)]
                scalars = [f"dyn_{k}" for k in range(len(self.dynamic))
                           if re.search(rf"\bdyn_{k}\b", code)]
                params = [f"{ctypes_of[a]} *restrict {a}" for a in arrays]
                params += [f"const scalar {d}" for d in scalars]
                params += ["const int record", "const scalar t", "const int tid", "const int nth",
                           "const int32_t *restrict cut"]
                flags = [f"    int32_t {p.name}_flag[{p.size}];" for p in self.spec.populations
                         if f"{p.name}_flag" in code]
                functions.append(
                    f"static __attribute__((noinline)) void block_{n}({', '.join(params)}) {{\n"
                    + "".join(f + "\n" for f in flags)
                    + f"    (void)record; (void)t; (void)tid; (void)nth; (void)cut;\n"
                    f"{_indent(self.switched_off(code, scalars), 1)}\n}}\n")
                args = ", ".join([*arrays, *scalars, "record", "t", "tid", "nth", "cut"])
                calls.append(call(n, f"block_{n}({args});"))
            calls.append(call(n_blocks + len(phases), "BARRIER();"))
            phases.append(calls)
        self.profile_labels += ["barrier after the synapse phase",
                                "barrier after the neuron phase"]
        split, merge = [], []
        for pop in self.spec.populations:
            n, spikes, count = pop.size, self.c[pop.name + ".spikes"], \
                self.c[pop.name + ".spike_count"]
            seg, seg_count = self.c[pop.name + ".seg"], self.c[pop.name + ".seg_count"]
            split.append(
                f"    {{ const int lo = part({n}, tid, nth, cut), "
                f"hi = part({n}, tid + 1, nth, cut);"
                f" int m = 0;\n"
                f"      for (int k = 0; k < {count}[0]; k++) {{ const int i = {spikes}[k];"
                f" if (i >= lo && i < hi) {seg}[lo + m++] = i; }}\n"
                f"      {count_at(seg_count, 'tid')} = m; }}")
            merge.append(
                f"    {{ const int lo = part({n}, tid, nth, cut); int off = 0;\n"
                f"      for (int tt = 0; tt < tid; tt++) off += {count_at(seg_count, 'tt')};\n"
                f"      for (int k = 0; k < {count_at(seg_count, 'tid')}; k++)"
                f" {spikes}[off + k] = {seg}[lo + k];\n"
                f"      if (tid == nth - 1) {{\n"
                f"        const int m = off + {count_at(seg_count, 'tid')};"
                f" {count}[0] = m;\n"
                f"        memset({spikes} + m, 0, sizeof(int32_t) * (size_t)({n} - m)); }} }}")
        return TEMPLATE.format(
            scalar=scalar, fingerprint=self.spec.fingerprint(), unpack="\n".join(unpack),
            dyn="\n".join(dyn), functions="\n".join(functions),
            synapse_phase="\n".join(phases[0]), neuron_phase="\n".join(phases[1]),
            split="\n".join(split), merge="\n".join(merge),
            dt=literal(self.spec.dt, "double"), max_threads=MAX_STEP_THREADS,
            min_split=MIN_SPLIT_NEURONS, profile=PROFILE if profile else "",
            flush=int(self.spec.flush_subnormals),
            n_profile=n_blocks + 2, prof_threads=PROFILED_THREADS)


def generate(spec: NetworkSpec, profile: bool = False
             ) -> tuple[str, list[ArraySpec], list[tuple[str, str]]]:
    """C source, the arrays it expects (in order) and its dynamic parameters (in order).

    ``profile`` adds timers around every block (per thread) and ``profile_read``;
    :func:`profile_labels` names the entries."""
    gen = _Generator(spec)
    source = gen.generate(profile)
    return source, gen.arrays, gen.dynamic


def profile_labels(spec: NetworkSpec) -> list[str]:
    """What each entry of a profiling build's ``profile_read`` times, in order."""
    gen = _Generator(spec)
    gen.generate(profile=True)
    return gen.profile_labels
