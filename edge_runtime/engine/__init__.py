"""TensorRT engines: build (``build.py``), the TensorRT API with its version dispatch and the engine runner
(``trt.py``), and CUDA device buffers through cuda-python or pycuda (``cuda.py``). Nothing here imports
tensorrt or CUDA until a function that needs them is called.
"""
