"""Hafner 2018's published figures: the thesis's Tables 2-19 and its appendix D's journal
paper (Hafner, Bhuiyan, Kooij & Granger, "RGB-depth cross-modal person re-identification"),
in percent, as `jaxreid.evaluation.published` describes.

Known slips of the source, kept as printed (so that a reproduction is compared with what the
paper says): Hafner 2018 Table 13 (c) repeats Table 11 (c)'s cross-modal R1/R5/R10 and
mAP cells; its last row is labelled "Q:D, G:RGB" but is the Q:D, G:D row (its position and
its figure 22.39 %, far above both cross-modal rows, say so). Table 10's Q:RGB, G:RGB R1
(50.3 %) is above its mAP (28.3 %); Hafner 2018's code computes mAP over a 50-image-per-person
gallery and rank-1 single-shot, so mAP below rank-1 is possible (issue 27).
"""

from jaxreid.evaluation.published.cells import RGBD_PAIRS, RGBI_PAIRS, cells, pairs, sysu

_RGB, _D, _I = "Q:rgb G:rgb", "Q:depth G:depth", "Q:infrared G:infrared"

HAFNER2018: dict[str, dict[tuple, dict[str, tuple]]] = {
    # Table 2: BIWI, single-modal networks (Modality, FE, Loss).
    "table2": {
        ("RGB", "R18", "Triplet"): {_RGB: cells("93.68 99.65 99.96 94.77")},
        ("RGB", "R18", "Softmax"): {_RGB: cells("93.32 99.67 99.93 94.46")},
        ("RGB", "R50", "Triplet"): {_RGB: cells("92.14 99.71 99.95 93.44")},
        ("RGB", "R50", "Softmax"): {_RGB: cells("94.75 99.75 99.96 95.68")},
        ("Depth", "R18", "Triplet"): {_D: cells("61.28 93.85 99.44 62.71")},
        ("Depth", "R18", "Softmax"): {_D: cells("57.09 88.96 96.95 58.38")},
        ("Depth", "R50", "Triplet"): {_D: cells("54.23 91.48 99.15 55.31")},
        ("Depth", "R50", "Softmax"): {_D: cells("59.84 90.54 97.80 61.44")},
    },
    # Table 3: RobotPKU, single-modal networks.
    "table3": {
        ("RGB", "R18", "Triplet"): {_RGB: cells("90.53 99.30 99.46 91.91")},
        ("RGB", "R18", "Softmax"): {_RGB: cells("84.73 98.00 99.24 86.86")},
        ("RGB", "R50", "Triplet"): {_RGB: cells("89.04 99.17 99.46 90.63")},
        ("RGB", "R50", "Softmax"): {_RGB: cells("84.52 97.91 99.12 87.11")},
        ("Depth", "R18", "Triplet"): {_D: cells("n/a n/a n/a n/a")},
        ("Depth", "R18", "Softmax"): {_D: cells("39.17 69.85 82.58 38.65")},
        ("Depth", "R50", "Triplet"): {_D: cells("n/a n/a n/a n/a")},
        ("Depth", "R50", "Softmax"): {_D: cells("44.50 75.83 87.56 44.50")},
    },
    # Table 4: SYSU-MM01, single-modal networks (one split, no spread).
    "table4": {
        ("RGB", "R18", "Triplet"): {_RGB: cells("74.00 93.98 97.52 74.85")},
        ("RGB", "R18", "Softmax"): {_RGB: cells("67.28 87.40 92.07 68.38")},
        ("RGB", "R50", "Triplet"): {_RGB: cells("n/a n/a n/a n/a")},
        ("RGB", "R50", "Softmax"): {_RGB: cells("75.06 91.35 94.76 76.09")},
        ("Infrared", "R18", "Triplet"): {_I: cells("61.45 88.92 94.52 62.11")},
        ("Infrared", "R18", "Softmax"): {_I: cells("62.03 87.08 93.28 63.24")},
        ("Infrared", "R50", "Triplet"): {_I: cells("n/a n/a n/a n/a")},
        ("Infrared", "R50", "Softmax"): {_I: cells("68.58 91.16 96.09 69.91")},
    },
    # Tables 5-7: one-stream network (FE).
    "table5": {
        ("R18",): pairs(
            RGBD_PAIRS,
            "13.27 47.66 72.71 14.55",
            "15.85 51.32 75.30 20.09",
            "86.24 98.10 99.52 88.15",
            "52.78 86.84 96.10 54.23",
        ),
        ("R50",): pairs(
            RGBD_PAIRS,
            "15.68 50.29 75.65 16.86",
            "19.82 55.74 78.92 23.75",
            "88.60 98.37 99.53 90.16",
            "57.48 89.01 97.53 59.06",
        ),
    },
    "table6": {
        ("R18",): pairs(
            RGBD_PAIRS,
            "10.06 34.08 52.25 9.34",
            "11.17 36.96 54.87 12.73",
            "75.52 94.26 97.40 77.03",
            "34.68 64.87 78.65 33.82",
        ),
        ("R50",): pairs(
            RGBD_PAIRS,
            "11.92 38.13 57.34 11.42",
            "12.48 38.51 56.77 14.19",
            "77.27 94.92 97.62 79.00",
            "38.52 69.23 82.19 38.34",
        ),
    },
    "table7": {
        ("R18",): pairs(
            RGBI_PAIRS,
            "9.64 26.69 37.71 9.75",
            "12.11 31.99 44.45 12.64",
            "62.57 83.16 88.49 63.10",
            "51.13 77.84 85.96 52.47",
        ),
        ("R50",): pairs(
            RGBI_PAIRS,
            "13.57 36.39 50.00 14.19",
            "18.40 43.76 58.04 18.98",
            "73.25 90.56 94.44 74.84",
            "61.62 86.56 93.57 63.33",
        ),
    },
    # Tables 8-10: zero-padding network (FE).
    "table8": {
        ("R18",): pairs(
            RGBD_PAIRS,
            "4.77 20.75 39.26 5.65",
            "3.21 16.53 32.57 6.52",
            "76.75 95.89 99.07 79.18",
            "26.42 54.31 71.33 25.96",
        ),
        ("R50",): pairs(
            RGBD_PAIRS,
            "3.89 16.21 31.60 5.02",
            "5.00 19.88 34.01 7.60",
            "81.46 97.31 99.00 83.73",
            "30.14 58.93 76.36 30.30",
        ),
    },
    "table9": {
        ("R18",): pairs(
            RGBD_PAIRS,
            "4.62 19.24 34.27 4.76",
            "3.54 17.07 32.28 4.98",
            "60.85 87.37 93.68 62.82",
            "20.98 39.89 53.77 19.71",
        ),
        ("R50",): pairs(
            RGBD_PAIRS,
            "3.42 15.18 29.25 3.64",
            "3.04 14.61 29.60 4.84",
            "57.96 84.07 91.80 59.99",
            "18.67 35.83 47.88 17.60",
        ),
    },
    "table10": {
        ("R18",): pairs(
            RGBI_PAIRS,
            "8.7 28.2 42.7 8.8",
            "8.4 25.2 38.7 8.5",
            "50.3 79.1 88.0 28.3",
            "28.8 51.1 64.9 28.3",
        ),
        ("R50",): pairs(
            RGBI_PAIRS,
            "10.17 30.02 45.16 9.63",
            "8.83 26.23 39.3 8.66",
            "55.3 83.32 91.09 48.75",
            "22.53 47.64 61.36 12.93",
        ),
    },
    # Tables 11-16: cross-modal distillation (Transfer direction, FE).
    "table11": {
        ("Depth to RGB", "R18"): pairs(
            RGBD_PAIRS,
            "21.93 57.70 78.85 22.29",
            "27.72 65.35 81.63 27.95",
            "59.78 89.06 97.62 62.68",
            "55.07 89.46 98.17 56.30",
        ),
        ("Depth to RGB", "R50"): pairs(
            RGBD_PAIRS,
            "26.70 66.73 85.40 27.13",
            "29.78 70.43 89.05 30.94",
            "61.78 87.29 96.19 63.88",
            "59.54 90.41 97.88 60.99",
        ),
        ("RGB to Depth", "R18"): pairs(
            RGBD_PAIRS,
            "5.25 19.93 35.19 6.09",
            "6.55 29.13 51.58 11.56",
            "94.88 99.80 99.98 95.87",
            "34.59 65.06 82.65 34.53",
        ),
        ("RGB to Depth", "R50"): pairs(
            RGBD_PAIRS,
            "6.40 24.57 42.38 6.91",
            "7.78 30.04 49.86 11.90",
            "93.60 99.71 99.96 94.79",
            "33.11 64.54 81.80 32.87",
        ),
    },
    "table12": {
        ("Depth to RGB", "R18"): pairs(
            RGBD_PAIRS,
            "25.54 70.20 93.07 27.92",
            "26.47 71.86 93.98 28.13",
            "57.27 87.72 97.21 59.21",
            "61.24 94.12 99.47 62.69",
        ),
        ("Depth to RGB", "R50"): pairs(
            RGBD_PAIRS,
            "22.35 63.17 87.78 24.52",
            "23.71 65.72 89.99 25.53",
            "46.27 79.23 93.01 47.71",
            "54.97 91.35 99.10 55.99",
        ),
        ("RGB to Depth", "R18"): pairs(
            RGBD_PAIRS,
            "7.97 33.08 58.86 8.94",
            "7.56 33.93 57.14 13.07",
            "93.47 99.74 99.99 94.50",
            "26.84 64.10 84.09 25.36",
        ),
        ("RGB to Depth", "R50"): pairs(
            RGBD_PAIRS,
            "6.63 29.74 54.66 7.95",
            "7.43 30.96 55.28 12.86",
            "92.12 99.61 99.93 93.50",
            "25.92 63.03 83.63 24.51",
        ),
    },
    "table13": {
        ("Depth to RGB", "R18"): pairs(
            RGBD_PAIRS,
            "10.05 33.52 51.35 9.63",
            "14.61 44.17 62.98 14.25",
            "39.93 65.09 77.03 40.04",
            "39.11 70.49 83.24 38.91",
        ),
        ("Depth to RGB", "R50"): pairs(
            RGBD_PAIRS,
            "18.36 49.85 68.53 17.38",
            "18.82 51.76 70.55 17.90",
            "43.59 72.29 84.26 43.76",
            "45.31 76.19 87.68 45.27",
        ),
        ("RGB to Depth", "R18"): pairs(
            RGBD_PAIRS,
            "5.25 19.93 35.19 6.09",
            "6.55 29.13 51.58 11.56",
            "83.67 97.93 99.15 86.03",
            "23.68 44.73 58.78 22.39",
        ),
        ("RGB to Depth", "R50"): pairs(
            RGBD_PAIRS,
            "4.22 19.05 33.93 6.69",
            "4.79 18.59 33.50 4.88",
            "84.25 97.67 98.94 86.70",
            "17.65 35.92 49.58 16.49",
        ),
    },
    # Table 14: only RGB to depth (depth triplet networks failed to train, Table 3).
    "table14": {
        ("RGB to Depth", "R18"): pairs(
            RGBD_PAIRS,
            "6.09 24.10 41.70 6.26",
            "6.89 24.92 41.90 10.38",
            "90.51 99.38 99.56 91.85",
            "19.30 47.54 66.16 17.34",
        ),
        ("RGB to Depth", "R50"): pairs(
            RGBD_PAIRS,
            "5.71 22.75 39.04 9.36",
            "5.35 21.52 38.30 5.73",
            "88.92 99.16 99.46 90.59",
            "16.94 42.75 61.32 14.89",
        ),
    },
    "table15": {
        ("Infrared to RGB", "R18"): pairs(
            RGBI_PAIRS,
            "7.52 22.52 34.53 8.49",
            "5.48 18.09 28.54 4.75",
            "13.78 33.01 44.73 9.38",
            "61.76 86.84 93.11 63.60",
        ),
        ("Infrared to RGB", "R50"): pairs(
            RGBI_PAIRS,
            "9.78 27.80 40.13 10.87",
            "8.58 26.00 38.58 7.67",
            "20.25 43.02 55.25 14.68",
            "67.50 90.73 96.10 69.44",
        ),
        ("RGB to Infrared", "R18"): pairs(
            RGBI_PAIRS,
            "4.14 12.89 20.84 3.96",
            "4.96 17.37 27.43 5.76",
            "67.28 87.40 92.07 68.38",
            "15.31 29.46 38.32 14.05",
        ),
        ("RGB to Infrared", "R50"): pairs(
            RGBI_PAIRS,
            "3.85 12.72 21.15 3.46",
            "2.96 12.23 20.60 4.06",
            "75.06 91.35 94.76 76.09",
            "13.16 26.04 34.81 12.19",
        ),
    },
    # Table 16: R18 only (R50 triplet networks failed to train on SYSU, Table 4).
    "table16": {
        ("Infrared to RGB", "R18"): pairs(
            RGBI_PAIRS,
            "9.73 30.08 45.51 9.74",
            "9.49 31.43 48.22 11.51",
            "13.99 38.82 55.54 10.10",
            "61.06 88.34 94.26 62.66",
        ),
        ("RGB to Infrared", "R18"): pairs(
            RGBI_PAIRS,
            "9.06 27.81 42.77 9.31",
            "8.36 28.68 42.80 10.34",
            "74.00 93.98 97.52 74.85",
            "21.89 47.13 61.62 21.38",
        ),
    },
    # Tables 17 / 18: the cross-modal pairs only (Approach).
    "table17": {
        ("WHOS, Euclidean",): pairs(RGBD_PAIRS[:2], "3.2 16.6 31.5 3.7", "5.1 18.7 32.6 5.6"),
        ("WHOS, XQDA",): pairs(RGBD_PAIRS[:2], "8.4 31.7 50.2 7.9", "11.6 34.1 51.4 12.1"),
        ("LOMO, Euclidean",): pairs(RGBD_PAIRS[:2], "2.8 16.4 32.5 4.8", "3.3 15.6 29.8 5.6"),
        ("LOMO, XQDA",): pairs(RGBD_PAIRS[:2], "13.7 43.2 61.7 12.9", "16.3 44.8 62.8 15.9"),
        # The thesis's zero-padding and distillation rows are garbled (two overlaid lines);
        # the journal paper (appendix D, its Table 4: the same table) prints them legibly,
        # and its cells agree with every legible thesis cell: taken from there.
        ("Zero-padding network, Resnet50",): pairs(
            RGBD_PAIRS[:2], "5.86 25.85 47.13 7.28", "10.34 38.91 62.84 9.77"
        ),
        ("One-stream network, Resnet50",): pairs(
            RGBD_PAIRS[:2], "15.68 50.29 75.65 16.86", "19.82 55.74 78.92 23.75"
        ),
        ("Cross-modal distillation network, Resnet50, embedding C",): pairs(
            RGBD_PAIRS[:2], "34.87 75.22 93.93 35.90", "36.29 77.77 94.44 38.31"
        ),
    },
    "table18": {
        ("WHOS, Euclidean",): pairs(RGBD_PAIRS[:2], "3.8 16.3 29.5 3.9", "3.5 16.1 31.2 5.4"),
        ("WHOS, XQDA",): pairs(RGBD_PAIRS[:2], "10.0 31.8 49.8 8.2", "9.8 31.0 48.0 9.8"),
        ("LOMO, Euclidean",): pairs(RGBD_PAIRS[:2], "3.6 15.0 28.0 3.9", "3.7 15.3 28.7 4.9"),
        ("LOMO, XQDA",): pairs(RGBD_PAIRS[:2], "12.9 36.4 56.1 10.1", "12.3 37.4 56.1 12.3"),
        # Garbled in the thesis; the journal's Table 5 (the same table) prints it legibly.
        ("Zero-padding network, Resnet50",): pairs(
            RGBD_PAIRS[:2], "7.76 29.04 47.79 7.67", "6.57 26.80 45.62 8.31"
        ),
        ("One-stream network, Resnet50",): pairs(
            RGBD_PAIRS[:2], "11.92 38.13 57.34 11.42", "12.48 38.51 56.77 14.19"
        ),
        ("Cross-modal distillation network, Resnet50, embedding 256",): pairs(
            RGBD_PAIRS[:2], "19.50 50.11 67.93 18.13", "21.51 54.90 72.61 20.52"
        ),
    },
    # Table 19: SYSU-MM01 with Wu et al. 2017's protocol (infrared query, RGB gallery).
    "table19": {
        ("One-stream network, Resnet18",): sysu(
            "16.13 56.27 72.17 18.92",
            "19.76 60.38 75.32 13.73",
            "19.65 64.45 79.69 30.30",
            "25.02 70.12 83.24 21.70",
        ),
        ("Cross-modal distillation network",): sysu(
            "15.09 58.29 75.80 18.26",
            "18.66 64.44 81.63 12.50",
            "17.82 66.08 85.09 28.57",
            "22.37 72.12 86.7 18.33",
        ),
    },
}

# Hafner 2018 appendix D (the journal paper), Table 3: training scenarios of the knowledge
# transfer on BIWI, ResNet18, softmax, classification-layer embedding (formula 4), depth to
# RGB; the cross-modal pairs only, one decimal as printed. Its text checks the differences:
# no freezing -6.8 / -3.5 mAP (30.6 - 23.9 = 6.7 as printed), no copying a further -6.4 / -5.8.
HAFNER2018_JOURNAL: dict[str, dict[tuple, dict[str, tuple]]] = {
    "table3": {
        ("No copying of weights, no freezing of layers",): pairs(
            RGBD_PAIRS[:2], "15.7 49.8 77.9 17.5", "19.4 54.6 82.9 23.9"
        ),
        ("Copying of weights, no freezing of layers",): pairs(
            RGBD_PAIRS[:2], "22.6 63.1 88.3 23.9", "26.9 70.2 91.8 29.7"
        ),
        ("Copying of weights, freezing of layers",): pairs(
            RGBD_PAIRS[:2], "29.8 71.5 91.8 30.6", "31.0 73.4 93.1 33.2"
        ),
    },
}
