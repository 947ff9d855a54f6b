"""Segmentation masks as COCO annotations: the store, imports from annotation tools, task files and previews."""
