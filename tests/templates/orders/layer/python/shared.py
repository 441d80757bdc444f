def label():
    return "from the layer"
