"""How often the two readings of "a group of atoms" give different first events (kernels.labels).

    python bench/event_definitions.py --store small.zarr [--preset small] [--config my.yaml]

For every shear of the configuration's plan that is done, the first events at each threshold by
``anywhere`` (min_group_size atoms above the threshold anywhere in the box) and by ``cluster``
(that many forming one cluster through neighbours within labels.d2min_cutoff_A), from the stored
D2min and positions. Prints per threshold: shears compared, how many have their event at another
step, how many have a cluster event only later than the stored steps (a shear stopped by the
'anywhere' rule), the median labelled atoms of each, and the mean Jaccard overlap of the labels
(cluster atoms against all atoms above) where both fire at the same step.
"""
from __future__ import annotations

import argparse

import numpy as np

from campaign import config, plan
from kernels.labels import first_cluster_events, first_events
from kernels.neighbours import neighbour_pairs
from store import layout, records


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True)
    p.add_argument("--preset", default="smoke")
    p.add_argument("--config")
    args = p.parse_args()
    cfg = config.load(args.preset, args.config, {"store": args.store})
    lab = cfg["labels"]
    thresholds = np.array(lab["thresholds_A2"])
    root = layout.open_root(args.store)
    rows = {t: {"n": 0, "other_step": 0, "later": 0, "any_size": [], "cluster_size": [], "jaccard": []}
            for t in thresholds}
    for task in plan.plan(cfg):
        rec = records.read(args.store, task.key)
        if task.STAGE != "shear" or rec is None or rec["status"] != records.DONE:
            continue
        s = layout.read(root, rec["path"], ("d2min_A2", "positions", "cell"))

        def pairs(step):
            i, j, _ = neighbour_pairs(s["positions"][step - 1], s["cell"][step - 1],  # noqa: B023  (this shear's)
                                      lab["d2min_cutoff_A"])
            return i, j

        anywhere = first_events(s["d2min_A2"], thresholds, lab["min_group_size"])
        cluster = first_cluster_events(s["d2min_A2"], thresholds, lab["min_group_size"], pairs)
        for t, thr in enumerate(thresholds):
            if anywhere.step[t] < 0:
                continue
            r = rows[thr]
            r["n"] += 1
            r["any_size"].append(int(anywhere.mask[t].sum()))
            if cluster.step[t] < 0:
                r["later"] += 1
                continue
            r["cluster_size"].append(int(cluster.mask[t].sum()))
            if cluster.step[t] != anywhere.step[t]:
                r["other_step"] += 1
            else:
                both = (cluster.mask[t] & anywhere.mask[t]).sum()
                r["jaccard"].append(both / (cluster.mask[t] | anywhere.mask[t]).sum())
    print(f"store {args.store}, config {config.science_hash(cfg)}, min_group_size {lab['min_group_size']}, "
          f"cutoff {lab['d2min_cutoff_A']} A")
    print(f"{'D2thres':>8} {'shears':>6} {'other step':>10} {'later':>6} {'atoms any':>10} {'atoms cluster':>13} "
          f"{'Jaccard':>8}")
    for thr, r in rows.items():
        med = lambda v: f"{np.median(v):.0f}" if v else "-"  # noqa: E731
        jac = f"{np.mean(r['jaccard']):.2f}" if r["jaccard"] else "-"
        print(f"{thr:>8g} {r['n']:>6} {r['other_step']:>10} {r['later']:>6} {med(r['any_size']):>10} "
              f"{med(r['cluster_size']):>13} {jac:>8}")


if __name__ == "__main__":
    main()
