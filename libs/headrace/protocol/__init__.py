"""The Inngest SDK protocol: registration, the call request, responses and opcodes, signing."""
