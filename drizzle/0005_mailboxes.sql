CREATE TABLE "mailbox_copies" (
	"message_id" uuid PRIMARY KEY NOT NULL,
	"mailbox" text NOT NULL,
	"raw" "bytea",
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"appended_at" timestamp with time zone,
	"folder" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text
);
--> statement-breakpoint
CREATE TABLE "mailbox_watch" (
	"address" text PRIMARY KEY NOT NULL,
	"folder" text NOT NULL,
	"uid_validity" bigint,
	"last_uid" bigint DEFAULT 0 NOT NULL,
	"state" text DEFAULT 'connecting' NOT NULL,
	"holder" text,
	"connected_at" timestamp with time zone,
	"last_error" text,
	"last_error_at" timestamp with time zone,
	"failures" integer DEFAULT 0 NOT NULL,
	"next_retry_at" timestamp with time zone,
	"logged_error" text,
	"logged_error_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "mailbox_copies" ADD CONSTRAINT "mailbox_copies_message_id_messages_id_fk" FOREIGN KEY ("message_id") REFERENCES "public"."messages"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "mailbox_copies_pending_idx" ON "mailbox_copies" USING btree ("created_at") WHERE appended_at is null;