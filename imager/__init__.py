"""Imaging real observations (``imager``): a visibility file in, the posterior and its products out (the application of
``ddrm.radio``'s recipe to files, with the stores and the products; no Prefect or Ray).

    file         one file end to end: read, hold out, choose the data term and the self-calibration, search
                 the field, write the products and the summary (``image_file``, ``image_or_skip``)
    terms        the data term (visibilities or closures) and the self-calibration decision
    scale        the field ladder scored on held-out scans
    quality      the fit, the χ² figures and the multiscale CLEAN beside the posterior
    predictive   the held-out predictive check and the structure maps
"""
