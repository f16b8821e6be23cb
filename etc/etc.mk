# etc/etc.mk: sample configuration, campaigns, templates, data, man page.
heraldconfdir = $(sysconfdir)/herald
heraldcampaignsdir = $(heraldconfdir)/campaigns
# The gateway and the sample campaigns are configuration a user edits:
# installed by install-samples below, never over an edited file.
HERALD_CONF_SAMPLES = etc/herald.ini
HERALD_CAMPAIGN_SAMPLES = etc/campaigns/welcome.ini etc/campaigns/winback.ini \
	etc/campaigns/cart.ini
EXTRA_DIST += $(HERALD_CONF_SAMPLES) $(HERALD_CAMPAIGN_SAMPLES)
samplesdir = $(pkgdatadir)/samples
dist_samples_DATA = etc/customers.jsonl etc/events.jsonl
tmplwelcomedir = $(pkgdatadir)/templates/welcome
dist_tmplwelcome_DATA = \
	templates/welcome/email.subject.liquid templates/welcome/email.text.liquid \
	templates/welcome/email.html.liquid templates/welcome/sms.body.liquid \
	templates/welcome/push.title.liquid templates/welcome/push.body.liquid \
	templates/welcome/push.data.liquid templates/welcome/webhook.body.liquid
tmplwelcomebdir = $(pkgdatadir)/templates/welcome-b
dist_tmplwelcomeb_DATA = templates/welcome-b/email.subject.liquid
tmplwinbackdir = $(pkgdatadir)/templates/winback
dist_tmplwinback_DATA = \
	templates/winback/email.subject.liquid templates/winback/email.text.liquid \
	templates/winback/email.html.liquid templates/winback/sms.body.liquid \
	templates/winback/push.title.liquid templates/winback/push.body.liquid
tmplcartdir = $(pkgdatadir)/templates/cart
dist_tmplcart_DATA = \
	templates/cart/email.subject.liquid templates/cart/email.text.liquid \
	templates/cart/email.html.liquid templates/cart/sms.body.liquid
tmplcart2dir = $(pkgdatadir)/templates/cart-2
dist_tmplcart2_DATA = templates/cart-2/email.subject.liquid \
	templates/cart-2/sms.body.liquid
tmplpartialsdir = $(pkgdatadir)/templates/_partials
dist_tmplpartials_DATA = templates/_partials/footer.liquid \
	templates/_partials/footer_html.liquid
# The manual pages: section 1 the program, 5 its files and each channel
# plugin (beside the plugin's source), 3 the plugin ABI.
dist_man_MANS = man/herald.1 man/herald.ini.5 man/herald-campaign.5 \
	man/herald-plugin.3 plugins/email/herald-email.5 \
	plugins/outbox/herald-outbox.5 plugins/sms/herald-sms.5 \
	plugins/push/herald-push.5 plugins/webhook/herald-webhook.5
EXTRA_DIST += scripts/gen-customers.py scripts/install-deps.sh scripts/quickstart.sh \
	scripts/demo-engagement.py

# The samples work from where they are installed: the campaigns' templates
# from $(pkgdatadir), the gateway's store and outbox under
# $(localstatedir)/lib/herald (the checkout's relative paths would point
# into etc/ once installed).  An installed file that differs from the new
# sample (the user edited it) is kept; the new sample goes beside it as
# NAME.new.  Uninstall removes a sample only when it is still as
# installed.
HERALD_SAMPLE_SED = \
	-e 's|^\(templates *= *\)\.\./\.\./templates/|\1$(pkgdatadir)/templates/|' \
	-e 's|^\(path *= *\)\.\./var/|\1$(localstatedir)/lib/herald/|' \
	-e 's|^\(dir *= *\)\.\./var/|\1$(localstatedir)/lib/herald/|'

install-data-local: install-samples
install-samples:
	$(MKDIR_P) "$(DESTDIR)$(heraldconfdir)" "$(DESTDIR)$(heraldcampaignsdir)"
	@for f in $(HERALD_CONF_SAMPLES) $(HERALD_CAMPAIGN_SAMPLES); do \
	  case $$f in etc/campaigns/*) d="$(DESTDIR)$(heraldcampaignsdir)";; \
	    *) d="$(DESTDIR)$(heraldconfdir)";; esac; \
	  b=$$(basename $$f); \
	  sed $(HERALD_SAMPLE_SED) "$(srcdir)/$$f" > "$$d/$$b.tmp" || exit 1; \
	  if [ -f "$$d/$$b" ] && ! cmp -s "$$d/$$b" "$$d/$$b.tmp"; then \
	    mv -f "$$d/$$b.tmp" "$$d/$$b.new"; chmod 644 "$$d/$$b.new"; \
	    echo "herald: kept your $$d/$$b; the new sample is $$d/$$b.new"; \
	  else \
	    mv -f "$$d/$$b.tmp" "$$d/$$b"; chmod 644 "$$d/$$b"; \
	  fi; \
	done

uninstall-local: uninstall-samples
uninstall-samples:
	@for f in $(HERALD_CONF_SAMPLES) $(HERALD_CAMPAIGN_SAMPLES); do \
	  case $$f in etc/campaigns/*) d="$(DESTDIR)$(heraldcampaignsdir)";; \
	    *) d="$(DESTDIR)$(heraldconfdir)";; esac; \
	  b=$$(basename $$f); \
	  rm -f "$$d/$$b.new"; \
	  if [ -f "$$d/$$b" ] && sed $(HERALD_SAMPLE_SED) "$(srcdir)/$$f" | cmp -s - "$$d/$$b"; then \
	    rm -f "$$d/$$b"; \
	  elif [ -f "$$d/$$b" ]; then \
	    echo "herald: kept your edited $$d/$$b"; \
	  fi; \
	done

# The plugins are dlopen'ed by file name: libtool's .la files have no use
# in the plugin folder (and name the build tree).  Uninstall then removes
# the plugins by name, as libtool would have from the .la.
install-exec-hook: remove-plugin-la
remove-plugin-la:
	@for f in $(pkglib_LTLIBRARIES); do \
	  rm -f "$(DESTDIR)$(pkglibdir)/$$(basename $$f)"; \
	done
uninstall-hook: uninstall-plugin-so
uninstall-plugin-so:
	@for f in $(pkglib_LTLIBRARIES); do \
	  rm -f "$(DESTDIR)$(pkglibdir)/$$(basename $$f .la).so"; \
	done
.PHONY: install-samples uninstall-samples remove-plugin-la uninstall-plugin-so
