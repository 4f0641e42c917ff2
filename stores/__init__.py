"""Stores: the fsspec/zarr layer (local or s3://), the run-root layout, and the dataset, survey and checkpoint stores."""
