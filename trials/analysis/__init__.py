"""Design-space analysis (`fastscale analyze`, docs/analysis.md): populations of trained
models read from studies, comparisons, tables or pycls sweeps (sources), their statistics
(stats: pure numpy), trends and a refined space (refine), the HTML report (report) and the
command's library entry point (run). Sits between trials.study and trials.compare."""
