"""An example chatbot that connects to the memory processor graph."""
