"""The tRPC HTTP wire protocol (as @trpc/server v11 speaks it), independent of the web framework."""
